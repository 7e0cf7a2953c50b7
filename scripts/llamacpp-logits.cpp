// llamacpp-logits.cpp - the peer side of weft's llama.cpp-numerics fixtures
// (scripts/gen-llamacpp-fixtures): run token ids through llama.cpp (linked
// against the peer's static libraries, scripts/build-peer) and print the last
// position's logits as C99 hex floats, exactly.  The first NP ids go in one
// llama_decode, the rest one at a time, as a user's prompt and generation
// would.  Context 512, 1 thread, default model and context parameters
// (F16 cache, flash attention auto: on for the CPU).
//   llamacpp-logits MODEL.gguf NP ID...
#include "llama.h"

#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: llamacpp-logits MODEL.gguf NP ID...\n");
		return 2;
	}
	llama_backend_init();
	llama_model *m = llama_model_load_from_file(argv[1], llama_model_default_params());
	if (!m) {
		fprintf(stderr, "llamacpp-logits: cannot load %s\n", argv[1]);
		return 1;
	}
	llama_context_params cp = llama_context_default_params();
	cp.n_ctx = 512;
	cp.n_batch = 512;
	cp.n_threads = 1;
	cp.n_threads_batch = 1;
	llama_context *c = llama_init_from_model(m, cp);
	std::vector<llama_token> ids;
	for (int i = 3; i < argc; i++)
		ids.push_back(atoi(argv[i]));
	const int np = atoi(argv[2]);
	if (!c || np < 1 || np > (int)ids.size() || llama_decode(c, llama_batch_get_one(ids.data(), np))) {
		fprintf(stderr, "llamacpp-logits: decode failed\n");
		return 1;
	}
	for (int i = np; i < (int)ids.size(); i++)
		if (llama_decode(c, llama_batch_get_one(&ids[i], 1))) {
			fprintf(stderr, "llamacpp-logits: decode failed\n");
			return 1;
		}
	const float *lg = llama_get_logits_ith(c, -1);
	const int nv = llama_vocab_n_tokens(llama_model_get_vocab(m));
	for (int i = 0; i < nv; i++)
		printf("%s%a", i ? " " : "", lg[i]);
	printf("\n");
	llama_free(c);
	llama_model_free(m);
	return 0;
}
