/* test_sample.c - the sampler: greedy, truncations, penalty, seeded draws. */
#include <math.h>

#include "sample.h"
#include "test.h"

static weft_sampler_params base(void)
{
	weft_sampler_params p = {.temp = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0, .repeat_penalty = 1.0f,
				 .repeat_last_n = 64, .seed = 42};
	return p;
}

static void greedy_is_argmax(void)
{
	float l[5] = {0.1f, 3.0f, -2.0f, 2.9f, 3.0f};
	weft_sampler_params p = base();
	p.temp = 0;
	weft_sampler *s = weft_sampler_new(&p, 5);
	CHECK_EQ_INT(weft_sampler_sample(s, l), 1); /* first of equal maxima */
	weft_sampler_free(s);
}

static void top_k_one_is_argmax(void)
{
	float l[4] = {1, 5, 2, 4.9f};
	weft_sampler_params p = base();
	p.top_k = 1;
	p.temp = 5;
	weft_sampler *s = weft_sampler_new(&p, 4);
	for (int i = 0; i < 100; i++)
		CHECK_EQ_INT(weft_sampler_sample(s, l), 1);
	weft_sampler_free(s);
}

/* Draw many times; frequencies must match softmax(l / temp) restricted to
 * the survivors. */
static void frequencies(float temp, float top_p, float min_p, const double *want)
{
	float l[4] = {0, logf(2), logf(3), logf(4)}; /* p = 0.1 0.2 0.3 0.4 */
	weft_sampler_params p = base();
	p.temp = temp;
	p.top_p = top_p;
	p.min_p = min_p;
	weft_sampler *s = weft_sampler_new(&p, 4);
	int count[4] = {0};
	const int N = 200000;
	for (int i = 0; i < N; i++)
		count[weft_sampler_sample(s, l)]++;
	for (int k = 0; k < 4; k++)
		CHECK_NEAR((double)count[k] / N, want[k], 0.006);
	weft_sampler_free(s);
}

static void draws_follow_softmax(void)
{
	const double w[4] = {0.1, 0.2, 0.3, 0.4};
	frequencies(1.0f, 1.0f, 0, w);
}

static void temperature_sharpens(void)
{
	/* temp 0.5 squares the probabilities: 1 4 9 16 over 30 */
	const double w[4] = {1 / 30.0, 4 / 30.0, 9 / 30.0, 16 / 30.0};
	frequencies(0.5f, 1.0f, 0, w);
}

static void top_p_cuts_the_tail(void)
{
	/* sorted 0.4 0.3 | 0.2 0.1: top-p 0.6 keeps the first two (0.7 >= 0.6) */
	const double w[4] = {0, 0, 3 / 7.0, 4 / 7.0};
	frequencies(1.0f, 0.6f, 0, w);
}

static void min_p_drops_unlikely(void)
{
	/* min-p 0.6 keeps p >= 0.24: tokens 2 and 3 */
	const double w[4] = {0, 0, 3 / 7.0, 4 / 7.0};
	frequencies(1.0f, 1.0f, 0.6f, w);
}

static void repeat_penalty_changes_greedy(void)
{
	float l[3] = {2.0f, 1.5f, -1.0f};
	weft_sampler_params p = base();
	p.temp = 0;
	p.repeat_penalty = 2.0f; /* 2.0 -> 1.0 < 1.5 */
	weft_sampler *s = weft_sampler_new(&p, 3);
	CHECK_EQ_INT(weft_sampler_sample(s, l), 0);
	weft_sampler_accept(s, 0);
	CHECK_EQ_INT(weft_sampler_sample(s, l), 1);
	weft_sampler_free(s);
	/* only the last repeat_last_n tokens count */
	p.repeat_last_n = 2;
	s = weft_sampler_new(&p, 3);
	weft_sampler_accept(s, 0);
	weft_sampler_accept(s, 2);
	weft_sampler_accept(s, 2);
	CHECK_EQ_INT(weft_sampler_sample(s, l), 0);
	weft_sampler_free(s);
}

static void seed_reproducible(void)
{
	float l[6] = {1, 1, 1, 1, 1, 1};
	weft_sampler_params p = base();
	int32_t a[50], b[50], c[50];
	weft_sampler *s = weft_sampler_new(&p, 6);
	for (int i = 0; i < 50; i++)
		a[i] = weft_sampler_sample(s, l);
	weft_sampler_free(s);
	s = weft_sampler_new(&p, 6);
	for (int i = 0; i < 50; i++)
		b[i] = weft_sampler_sample(s, l);
	weft_sampler_free(s);
	p.seed = 43;
	s = weft_sampler_new(&p, 6);
	for (int i = 0; i < 50; i++)
		c[i] = weft_sampler_sample(s, l);
	weft_sampler_free(s);
	CHECK(memcmp(a, b, sizeof a) == 0);
	CHECK(memcmp(a, c, sizeof a) != 0);
}

int main(void)
{
	t_suite = "sample";
	RUN(greedy_is_argmax);
	RUN(top_k_one_is_argmax);
	RUN(draws_follow_softmax);
	RUN(temperature_sharpens);
	RUN(top_p_cuts_the_tail);
	RUN(min_p_drops_unlikely);
	RUN(repeat_penalty_changes_greedy);
	RUN(seed_reproducible);
	TEST_MAIN_END();
}
