/* test_prune.c - the pruning module (prune.h): every embd-stage method
 * against the independent Python transcriptions of its authors' selection
 * code (tests/data/prune, scripts/gen-prune-fixtures.py): kept indices
 * identical, merged rows within 1e-5; budget semantics, scopes, the
 * record in the stream, errors. */
#include <stdint.h>

#include "embd.h"
#include "keys.h"
#include "prune.h"
#include "registry.h"
#include "stream.h"
#include "test.h"
#include "util.h"

#define DIR "tests/data/prune/"

/* The fixture's inputs: tile 0 (llava), tiles 1-3 (smolvlm's image). */
static weft_frame *frames[8];
static weft_embd_tile tiles[4];
static int n_tiles;
static const float *text;
static int64_t n_text;

static int load_inputs(void)
{
	if (n_tiles)
		return 0;
	FILE *f = fopen(DIR "inputs.wst", "rb");
	if (!f)
		return -1;
	weft_reader *r = weft_reader_new(f);
	weft_frame *fr;
	int k = 0;
	while (k < 8 && weft_reader_next(r, &fr) == 1) {
		frames[k++] = fr;
		if (strcmp(weft_frame_kind(fr), WEFT_KIND_EMBD) == 0 && n_tiles < 4) {
			if (weft_embd_read(fr, &tiles[n_tiles]) != 0)
				return -1;
			n_tiles++;
		} else if (strcmp(weft_frame_kind(fr), "text_embd") == 0) {
			const weft_tensor *t = weft_frame_tensor(fr, "text");
			text = t->data;
			n_text = t->shape[0];
		}
	}
	weft_reader_free(r);
	fclose(f);
	return n_tiles == 4 && text ? 0 : -1;
}

static void fidelity(void)
{
	if (load_inputs() != 0)
		SKIP("tests/data/prune/inputs.wst absent or unreadable (scripts/gen-prune-fixtures.py)");
	FILE *f = fopen(DIR "expect.wst", "rb");
	if (!f)
		SKIP("tests/data/prune/expect.wst absent (scripts/gen-prune-fixtures.py)");
	weft_reader *r = weft_reader_new(f);
	weft_frame *e;
	int cases = 0, merged = 0;
	double worst = 0;
	while (!t_failed && weft_reader_next(r, &e) == 1) {
		const char *c = weft_frame_get(e, "weft.case"), *m = weft_frame_get(e, "weft.method");
		const char *pa = weft_frame_get(e, "weft.params");
		weft_prune_opts o = {.method = m, .keep = atoi(weft_frame_get(e, "weft.keep")), .params = pa,
				     .text = text, .n_text = n_text};
		const int llava = strcmp(c, "llava") == 0, t0 = llava ? 0 : 1, nt = llava ? 1 : 3;
		weft_prune_out out[3];
		if (weft_prune_tiles(&o, tiles + t0, nt, out) != 0) {
			FAILF("%s %s keep %lld: %s", c, m, (long long)o.keep, weft_errmsg());
			weft_frame_free(e);
			break;
		}
		const weft_tensor *wt = weft_frame_tensor(e, "tile"), *wk = weft_frame_tensor(e, "kept"),
				  *we = weft_frame_tensor(e, "embd");
		const int32_t *tile = wt->data, *kept = wk->data;
		int64_t k = 0;
		for (int t = 0; t < nt && !t_failed; t++)
			for (int64_t i = 0; i < out[t].tile.n_tokens && !t_failed; i++, k++) {
				if (k >= (int64_t)wk->nelem || tile[k] != t || kept[k] != out[t].tile.kept[i]) {
					FAILF("%s %s keep %lld: kept token %lld is tile %d index %d, the reference's tile %d index %d",
					      c, m, (long long)o.keep, (long long)k, t, out[t].tile.kept[i],
					      k < (int64_t)wk->nelem ? tile[k] : -1, k < (int64_t)wk->nelem ? kept[k] : -1);
					break;
				}
				if (we) {
					const float *a = out[t].tile.embd + i * out[t].tile.n_embd, *b = (const float *)we->data + k * we->shape[1];
					for (int64_t d = 0; d < out[t].tile.n_embd; d++) {
						const double err = fabs(a[d] - b[d]) / (fabs(b[d]) > 1 ? fabs(b[d]) : 1);
						worst = err > worst ? err : worst;
						if (err > 1e-5)
							FAILF("%s %s keep %lld: row %lld value %lld is %g, the reference's %g", c, m,
							      (long long)o.keep, (long long)k, (long long)d, a[d], b[d]);
					}
				}
			}
		if (!t_failed && k != (int64_t)wk->nelem)
			FAILF("%s %s keep %lld: %lld tokens kept, the reference keeps %llu", c, m, (long long)o.keep,
			      (long long)k, (unsigned long long)wk->nelem);
		cases++;
		merged += we != NULL;
		for (int t = 0; t < nt; t++)
			weft_prune_out_free(&out[t]);
		weft_frame_free(e);
	}
	weft_reader_free(r);
	fclose(f);
	if (!t_failed)
		printf("# %d cases (%d with merged rows), worst merged-row error %.2g\n", cases, merged, worst);
	if (!t_failed && cases < 30)
		FAILF("only %d cases in expect.wst", cases);
}

/* Budget semantics: keep/ratio, pass-through, rounding, scopes. */
static int64_t kept_total(const weft_prune_opts *o, int t0, int nt, int *passed)
{
	weft_prune_out out[3];
	*passed = 0;
	if (weft_prune_tiles(o, tiles + t0, nt, out) != 0)
		return -1;
	int64_t k = 0;
	for (int t = 0; t < nt; t++) {
		k += out[t].tile.n_tokens;
		*passed += out[t].passed;
		weft_prune_out_free(&out[t]);
	}
	return k;
}

static void budgets(void)
{
	if (load_inputs() != 0)
		SKIP("tests/data/prune/inputs.wst absent");
	int passed = 0;
	weft_prune_opts o = {.method = "cls", .ratio = 0.25};
	CHECK_EQ_INT(kept_total(&o, 0, 1, &passed), 144); /* round(0.25 x 576) */
	o.ratio = 0.001;
	CHECK_EQ_INT(kept_total(&o, 0, 1, &passed), 1); /* at least one */
	o.ratio = 1.0;
	CHECK_EQ_INT(kept_total(&o, 0, 1, &passed), 576);
	CHECK_EQ_INT(passed, 1);
	o = (weft_prune_opts){.method = "cls", .keep = 1000};
	CHECK_EQ_INT(kept_total(&o, 0, 1, &passed), 576);
	CHECK_EQ_INT(passed, 1);
	/* scope: image (3 tiles as one unit), tile (each), global (all four) */
	o = (weft_prune_opts){.method = "cls", .keep = 20, .scope = WEFT_PRUNE_IMAGE};
	CHECK_EQ_INT(kept_total(&o, 1, 3, &passed), 20);
	o.scope = WEFT_PRUNE_TILE;
	CHECK_EQ_INT(kept_total(&o, 1, 3, &passed), 60);
	/* global over tiles of two images (one vision model needed: same mmproj) */
	o.scope = WEFT_PRUNE_GLOBAL;
	CHECK_EQ_INT(kept_total(&o, 1, 3, &passed), 20);
	/* per-tile methods split by largest remainder: 20 over 3 x 64 -> 7, 7, 6 */
	o = (weft_prune_opts){.method = "divprune", .keep = 20};
	weft_prune_out out[3];
	CHECK(weft_prune_tiles(&o, tiles + 1, 3, out) == 0);
	int64_t sum = 0;
	for (int t = 0; t < 3; t++)
		sum += out[t].tile.n_tokens, weft_prune_out_free(&out[t]);
	CHECK_EQ_INT(sum, 20);
	o.method = "visionzip";
	o.params = NULL;
	if (weft_prune_tiles(&o, tiles + 1, 3, out) == 0) {
		CHECK_EQ_INT(out[0].tile.n_tokens, 7);
		CHECK_EQ_INT(out[1].tile.n_tokens, 7);
		CHECK_EQ_INT(out[2].tile.n_tokens, 6);
		for (int t = 0; t < 3; t++)
			weft_prune_out_free(&out[t]);
	} else {
		FAILF("visionzip: %s", weft_errmsg());
	}
}

static void random_method(void)
{
	if (load_inputs() != 0)
		SKIP("tests/data/prune/inputs.wst absent");
	weft_prune_opts o = {.method = "random", .keep = 64};
	weft_prune_out a, b, c;
	CHECK(weft_prune_tiles(&o, tiles, 1, &a) == 0);
	CHECK(weft_prune_tiles(&o, tiles, 1, &b) == 0);
	o.params = "seed=7";
	CHECK(weft_prune_tiles(&o, tiles, 1, &c) == 0);
	CHECK_EQ_INT(a.tile.n_tokens, 64);
	int same = 1, diff = 0;
	for (int64_t i = 0; i < 64; i++) {
		if (i)
			CHECK(a.tile.kept[i] > a.tile.kept[i - 1]);
		same &= a.tile.kept[i] == b.tile.kept[i];
		diff |= a.tile.kept[i] != c.tile.kept[i];
		CHECK(memcmp(a.tile.embd + i * 96, tiles[0].embd + a.tile.kept[i] * 96, 96 * sizeof(float)) == 0);
	}
	CHECK(same);
	CHECK(diff);
	weft_prune_out_free(&a), weft_prune_out_free(&b), weft_prune_out_free(&c);
}

/* The pruned tile as a frame and back: kept, merges, n_orig, positions;
 * a tile that kept nothing. */
static void record_round_trip(void)
{
	if (load_inputs() != 0)
		SKIP("tests/data/prune/inputs.wst absent");
	weft_prune_opts o = {.method = "pool", .keep = 16, .repack = 1};
	weft_prune_out p;
	CHECK(weft_prune_tiles(&o, tiles, 1, &p) == 0);
	weft_frame *f = weft_embd_frame(&p.tile);
	CHECK(f != NULL);
	weft_embd_tile t;
	CHECK(f && weft_embd_read(f, &t) == 0);
	CHECK_EQ_INT(t.n_tokens, 16);
	CHECK_EQ_INT(t.n_orig, 576);
	CHECK_EQ_INT(t.repack, 1);
	CHECK_EQ_INT(t.n_merge, 576); /* 16 bins of 6 x 6 */
	CHECK(t.keys == NULL && t.attn_recv == NULL && t.saliency != NULL);
	CHECK_STR(t.pruned, "pool keep=16 scope=image");
	/* replaying the record gives the rows */
	float row[96] = {0};
	for (int64_t i = 0; i < t.n_merge; i++)
		if (t.merge_row[i] == 5)
			for (int d = 0; d < 96; d++)
				row[d] += t.merge_w[i] * tiles[0].embd[(int64_t)t.merge_src[i] * 96 + d];
	for (int d = 0; d < 96; d++)
		CHECK_NEAR(row[d], t.embd[5 * 96 + d], 1e-6);
	CHECK_EQ_INT(t.kept[5], 6 * 24 + 6); /* bin (1, 1) of 6 x 6 tokens: row 6, column 6 */
	weft_frame_free(f);
	weft_prune_out_free(&p);
	/* a unit whose budget one tile takes: the others keep no rows */
	o = (weft_prune_opts){.method = "cls", .keep = 1};
	weft_prune_out out[3];
	CHECK(weft_prune_tiles(&o, tiles + 1, 3, out) == 0);
	for (int i = 0; i < 3; i++) {
		f = weft_embd_frame(&out[i].tile);
		CHECK(f && weft_embd_read(f, &t) == 0);
		CHECK(t.n_tokens <= 1 && t.n_orig == 64);
		weft_frame_free(f);
		weft_prune_out_free(&out[i]);
	}
}

static void errors(void)
{
	if (load_inputs() != 0)
		SKIP("tests/data/prune/inputs.wst absent");
	struct {
		weft_prune_opts o;
		int t0, nt;
		const char *want;
	} c[] = {
		{{.method = "nope", .keep = 4}, 0, 1, "unknown pruning method 'nope' (known: random, pool"},
		{{.method = "cls"}, 0, 1, "no budget for cls"},
		{{.method = "cls", .ratio = 1.5}, 0, 1, "--ratio 1.5 is not in (0, 1]"},
		{{.method = "cls", .keep = 4, .params = "depth=3"}, 0, 1, "unknown parameter 'depth' for cls (known: layer)"},
		{{.method = "cls", .keep = 4, .params = "layer=x"}, 0, 1, "is not a number"},
		{{.method = "vispruner", .keep = 4, .params = "important=2"}, 0, 1, "out of range"},
		{{.method = "cls", .keep = 4, .params = "layer=7"}, 0, 1, "encoder layer 7 asked, the frame has 3 layers"},
		{{.method = "visionzip", .keep = 64}, 0, 1, NULL}, /* has keys: fine */
		{{.method = "hiprune", .keep = 8}, 0, 1, "object_layer=9: the encoder has 3 blocks of attention (1..3; the default 9 is CLIP-L's"},
		{{.method = "cdpruner", .keep = 8}, 0, 1, "run prune-tokens with -m MODEL.gguf"},
		{{.method = "fastv", .keep = 8}, 0, 1, "inside the LLM"},
		{{.method = "cls", .keep = 8}, 0, 4, "from another vision model"},
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		weft_prune_out out[4];
		const int rc = weft_prune_tiles(&c[i].o, tiles + c[i].t0, c[i].nt, out);
		if (!c[i].want) {
			CHECK(rc == 0);
			for (int t = 0; rc == 0 && t < c[i].nt; t++)
				weft_prune_out_free(&out[t]);
		} else if (rc == 0 || !strstr(weft_errmsg(), c[i].want)) {
			FAILF("case %zu: rc %d, error '%s', expected '%s'", i, rc, rc ? weft_errmsg() : "", c[i].want);
		}
	}
	/* statistics missing: named with the encode-image option */
	weft_embd_tile bare = tiles[0];
	bare.keys = NULL;
	bare.attn_recv = NULL;
	weft_prune_opts o = {.method = "visionzip", .keep = 64};
	weft_prune_out out;
	CHECK(weft_prune_tiles(&o, &bare, 1, &out) != 0 && strstr(weft_errmsg(), "run encode-image --stats keys"));
	o = (weft_prune_opts){.method = "hiprune", .keep = 64, .params = "object_layer=2"};
	CHECK(weft_prune_tiles(&o, &bare, 1, &out) != 0 && strstr(weft_errmsg(), "run encode-image --stats attn"));
	/* a pruned tile is not pruned again */
	o = (weft_prune_opts){.method = "cls", .keep = 64};
	CHECK(weft_prune_tiles(&o, tiles, 1, &out) == 0);
	weft_prune_out again;
	CHECK(weft_prune_tiles(&o, &out.tile, 1, &again) != 0 && strstr(weft_errmsg(), "already pruned"));
	weft_prune_out_free(&out);
}

/* Every registered method: named, summarised, its defaults parse, and its
 * stage is coherent with what weft_prune_tiles accepts. */
static void registry(void)
{
	const weft_family *f = weft_prune_family();
	CHECK(f->n >= 13);
	for (size_t i = 0; i < f->n; i++) {
		const weft_method *m = weft_family_at(f, i);
		CHECK(m->name && *m->name && m->summary && *m->summary);
		weft_prune_opts o = {.method = m->name, .keep = 8};
		if (weft_prune_check(&o) != 0)
			FAILF("%s: its defaults do not check: %s", m->name, weft_errmsg());
		const int st = weft_prune_stage_of(m->name);
		CHECK(st >= WEFT_PRUNE_AT_EMBD && st <= WEFT_PRUNE_AT_LLM);
		CHECK(strstr(weft_prune_describe(&o), m->name) == weft_prune_describe(&o));
	}
}

int main(void)
{
	t_suite = "prune";
	RUN(fidelity);
	RUN(budgets);
	RUN(random_method);
	RUN(record_round_trip);
	RUN(errors);
	RUN(registry);
	for (int i = 0; i < 8; i++)
		weft_frame_free(frames[i]);
	TEST_MAIN_END();
}
