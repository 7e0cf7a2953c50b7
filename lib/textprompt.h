/* textprompt.h - prompt text with image placeholders, tokenized: what
 * tokenize writes as a stream, and what an in-process run (eval) feeds the
 * prompt assembler.
 *
 * "<image N>" (N >= 1) and "<image>" (the number after the previous
 * placeholder's, from 1) split the text; the text between is tokenized
 * (with special-token parsing unless asked otherwise), the first run
 * starting with BOS when asked.  The chat template, if any, is applied to
 * the text before (chat.h). */
#ifndef WEFT_TEXTPROMPT_H
#define WEFT_TEXTPROMPT_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

#define WEFT_TEXT_BOS 1u     /* start with the vocabulary's BOS */
#define WEFT_TEXT_SPECIAL 2u /* special-token texts ("<|im_start|>") are their tokens */
#define WEFT_TEXT_IMAGES 4u  /* "<image>" / "<image N>" are placeholders (else text) */
#define WEFT_TEXT_ENDS 8u    /* end with the EOS and SEP the vocabulary's metadata asks
			      * for (tokenizer.ggml.add_eos_token / add_sep_token), as
			      * llama.cpp's tokenizer does with add_special */

/* One part of the prompt: a run of tokens, or an image placeholder. */
typedef struct weft_text_part {
	int image;              /* 0: tokens; else the placeholder's image number */
	int64_t off, n;         /* tokens: ids[off .. off+n-1] of the prompt */
	size_t text_off, text_len; /* image: the placeholder's bytes in the text */
} weft_text_part;

typedef struct weft_text_prompt {
	int32_t *ids;           /* every run's ids, in order */
	int64_t n_ids;
	weft_text_part *parts;
	int n_parts;
	int n_images;           /* placeholders */
	int max_image;          /* largest image number */
} weft_text_prompt;

/* Split and tokenize text[len] into p (zeroed first).  Runs without tokens
 * are left out.  0, or -1 with an error (the tokenizer's; "--bos: the
 * model has no BOS token"). */
int weft_text_prompt_build(weft_text_prompt *p, const weft_vocab *v, const char *text, size_t len, unsigned flags);
void weft_text_prompt_free(weft_text_prompt *p);

#endif
