/* keys.h - every metadata key and frame kind of the weft stream, defined
 * once (man 5 weft-stream describes each).  Library codecs and tools name
 * keys through these macros only. */
#ifndef WEFT_KEYS_H
#define WEFT_KEYS_H

/* ---- every frame ---- */
#define WEFT_KEY_VERSION "weft.version"   /* format version ("1") */
#define WEFT_KEY_KIND "weft.kind"         /* frame kind (below) */
#define WEFT_KEY_CRC "weft.crc32"         /* CRC-32 of the data section */
#define WEFT_KEY_TOOL "weft.tool"         /* "prefill 0.1.0" */
#define WEFT_KEY_VOCAB "weft.vocab"       /* tokenizer fingerprint */
#define WEFT_KEY_MODEL "weft.model"       /* model fingerprint */

/* ---- frame kinds ---- */
#define WEFT_KIND_TOKENS "tokens"
#define WEFT_KIND_IMAGE "image"           /* an <image N> placeholder */
#define WEFT_KIND_EMBD "embd"             /* one image tile's embeddings */
#define WEFT_KIND_KVCACHE "kvcache"
#define WEFT_KIND_KV "kv"                 /* one layer of a KV cache */
#define WEFT_KIND_LOGITS "logits"
#define WEFT_KIND_KVPACK "kvpack"         /* a packed KV cache (kvcompress --pack) */
#define WEFT_KIND_KVPACKL "kvpackl"       /* one of its layers */

/* ---- tokens and image placeholders (tokenize) ---- */
#define WEFT_KEY_IMAGE "weft.image"             /* image number N, 1-based */
#define WEFT_KEY_PLACEHOLDER "weft.placeholder" /* the placeholder's text */

/* ---- embd (encode-image) ---- */
#define WEFT_KEY_TILE "weft.tile"               /* tile index in the image */
#define WEFT_KEY_TILES "weft.tiles"             /* tiles of the image */
#define WEFT_KEY_ROWS "weft.rows"               /* tile grid rows (0: one tile) */
#define WEFT_KEY_COLS "weft.cols"
#define WEFT_KEY_SALIENCY "weft.saliency"       /* cls_attn or attn_recv */
#define WEFT_KEY_PATCH_SIDE "weft.patch_side"   /* patches per side */
#define WEFT_KEY_MERGE "weft.merge"             /* patches per token side */
#define WEFT_KEY_MMPROJ "weft.mmproj"           /* vision model fingerprint */
#define WEFT_KEY_SOURCE "weft.source"           /* image file name */
#define WEFT_KEY_PREFIX "weft.prefix"           /* wrapper text before the rows */
#define WEFT_KEY_SUFFIX "weft.suffix"           /* and after */

/* ---- visual-token pruning (prune-tokens, prune.h) ---- */
#define WEFT_KIND_PRUNE "prune"                 /* an in-LLM drop for prefill */
#define WEFT_KEY_N_ORIG "weft.n_orig"           /* embd: tokens before pruning */
#define WEFT_KEY_PRUNED "weft.pruned"           /* embd: "METHOD keep=N ..." */
#define WEFT_KEY_POSITIONS "weft.positions"     /* embd: keep or repack */
#define WEFT_KEY_METHOD "weft.method"           /* prune: method name */
#define WEFT_KEY_KEEP "weft.keep"               /* prune: visual tokens kept */
#define WEFT_KEY_RATIO "weft.ratio"             /* prune: or the fraction kept */
#define WEFT_KEY_PARAMS "weft.params"           /* prune: "name=value,..." */
#define WEFT_KEY_SCOPE "weft.scope"             /* prune: image, tile or global */

/* ---- kvcache, kv, logits (prefill, decode) ---- */
#define WEFT_KEY_N_LAYER "weft.n_layer"
#define WEFT_KEY_N_HEAD_KV "weft.n_head_kv"
#define WEFT_KEY_HEAD_DIM "weft.head_dim"
#define WEFT_KEY_N_PAST "weft.n_past"
#define WEFT_KEY_KV_TYPE "weft.kv_type"         /* F32, Q8_0; absent: F16 */
#define WEFT_KEY_NUMERICS "weft.numerics"       /* "llama.cpp" when computed so */
#define WEFT_KEY_LAYER "weft.layer"
/* KV compression (kvcompress, issue 13): statistics and compressed layouts */
#define WEFT_KEY_MASS_QUERIES "weft.mass_queries" /* queries summed into mass */
#define WEFT_KEY_Q_COUNT "weft.q_count"         /* queries in q_mean / q_cov */
#define WEFT_KEY_KIVI "weft.kivi"               /* "kbits,vbits,residual" */
#define WEFT_KEY_GEAR_RANK "weft.gear_rank"     /* low-rank terms per row */
#define WEFT_KEY_KV_METHODS "weft.kv_methods"   /* what kvcompress applied */

#endif
