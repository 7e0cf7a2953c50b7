/* eval_metric.c - the metric and answer-extraction families
 * (metrics.def) and the scoring entry point. */
#include <stdlib.h>
#include <string.h>

#include "eval_int.h"
#include "util.h"

typedef struct metric_row {
	weft_method m;
} metric_row;

static const metric_row metrics[WEFT_METRIC_COUNT] = {
#define WEFT_METRIC(ID, name, summary) [WEFT_METRIC_##ID] = {{#name, summary, "", ""}},
#define WEFT_MC_EXTRACT(ID, name, summary)
#include "metrics.def"
#undef WEFT_METRIC
#undef WEFT_MC_EXTRACT
};

static const metric_row extractors[WEFT_MC_COUNT] = {
#define WEFT_METRIC(ID, name, summary)
#define WEFT_MC_EXTRACT(ID, name, summary) [WEFT_MC_##ID] = {{#name, summary, "", ""}},
#include "metrics.def"
#undef WEFT_METRIC
#undef WEFT_MC_EXTRACT
};

static const weft_family metric_family = {"metric", metrics, WEFT_METRIC_COUNT, sizeof metrics[0]};
static const weft_family extract_family = {"answer extraction rule", extractors, WEFT_MC_COUNT, sizeof extractors[0]};

const weft_family *weft_metrics(void) { return &metric_family; }
const weft_family *weft_mc_extractors(void) { return &extract_family; }
int weft_metric_find(const char *name) { return weft_family_find(&metric_family, name); }
int weft_mc_extract_find(const char *name) { return weft_family_find(&extract_family, name); }

const char *weft_metric_name(int metric)
{
	return metric >= 0 && metric < WEFT_METRIC_COUNT ? metrics[metric].m.name : "?";
}

const char *weft_mc_extract_name(int mode)
{
	return mode >= 0 && mode < WEFT_MC_COUNT ? extractors[mode].m.name : "?";
}

int weft_metric_score(const weft_eval_item *it, const char *prediction, size_t len, const weft_score_opts *o,
		      weft_score *out)
{
	memset(out, 0, sizeof *out);
	double s = -1;
	char *norm = NULL;
	switch (it->metric) {
	case WEFT_METRIC_MC:
		return ev_metric_mc_score(it, prediction, len, o, out);
	case WEFT_METRIC_VQA: s = weft_vqa_accuracy(prediction, len, it->answers, it->n_answers, &norm); break;
	case WEFT_METRIC_EXACT: s = weft_exact_match(prediction, len, it->answers, it->n_answers, &norm); break;
	case WEFT_METRIC_ANLS: {
		size_t k;
		s = weft_anls(prediction, len, it->answers, it->n_answers);
		norm = ev_utf8_sanitize(prediction, len, &k);
		break;
	}
	default: weft_error("unknown metric %d", it->metric); return -1;
	}
	out->rule = weft_metric_name(it->metric);
	if (s < 0 || !norm) {
		free(norm);
		weft_error("out of memory");
		return -1;
	}
	out->score = s;
	out->extracted = norm;
	return 0;
}

int weft_metric_score_choice(const weft_eval_item *it, int choice, weft_score *out)
{
	memset(out, 0, sizeof *out);
	const char l[2] = {(char)('A' + choice), 0};
	out->rule = "likelihood";
	out->score = choice == it->gold;
	out->extracted = weft_strndup(l, choice >= 0 ? 1 : 0);
	return out->extracted ? 0 : -1;
}
