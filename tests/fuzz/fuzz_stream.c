/* fuzz_stream.c - libFuzzer harness for the weft stream reader: any bytes
 * must give frames or one clean error, never a crash, leak or hang.  Every
 * frame read is written back through both writers and re-read. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void reread(const char *buf, size_t len)
{
	weft_reader *r = weft_reader_mem(buf, len);
	weft_frame *f;
	if (weft_reader_next(r, &f) != 1)
		abort(); /* what we wrote must read back */
	weft_frame_free(f);
	weft_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	weft_reader *r = weft_reader_mem(data, size);
	weft_reader_limits lim = {.max_header = 1 << 20, .max_data = 1 << 24};
	weft_reader_set_limits(r, &lim);
	weft_frame *f;
	while (weft_reader_next(r, &f) == 1) {
		for (int i = 0; i < f->n_tensors; i++) {
			const weft_tensor *t = &f->tensors[i];
			size_t nb = (size_t)(t->end - t->begin);
			if (nb) { /* touch first and last byte */
				volatile uint8_t x = ((uint8_t *)t->data)[0];
				x = ((uint8_t *)t->data)[nb - 1];
				(void)x;
			}
		}
		char *buf = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&buf, &len);
		if (weft_frame_write_raw(m, f) != 0)
			abort();
		fclose(m);
		reread(buf, len);
		free(buf);
		buf = NULL;
		m = open_memstream(&buf, &len);
		if (weft_frame_write(m, f) == 0) {
			fclose(m);
			reread(buf, len);
		} else {
			fclose(m);
		}
		free(buf);
		weft_frame_free(f);
	}
	weft_reader_free(r);
	return 0;
}
