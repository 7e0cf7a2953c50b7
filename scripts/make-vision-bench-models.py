#!/usr/bin/env python3
"""Write the mmproj GGUFs the vision bench times, into the cache (never the
repo), made by llama.cpp's own converters from random-init transformers
models so names, keys and dtypes are what real mmproj files have:

  bench-models/vision/clip-l14-336-mlp-mmproj-f16.gguf
      LLaVA-1.5's vision tower (CLIP ViT-L/14 at 336: hidden 1024, ffn 4096,
      24 layers, 16 heads, quick-GELU) plus a LLaVA mlp projector
      1024 -> 576 -> 576, so it pairs with SmolLM2-135M (n_embd 576).  Made
      as LLaVA-1.5 files are: tools/mtmd/legacy-models/
      convert_image_encoder_to_gguf.py --llava-projector (drops the last
      block: 23 stored).
  bench-models/vision/siglip-b16-512-idefics3-mmproj-f16.gguf
      SmolVLM-256M-Instruct's vision tower (SigLIP-B/16 at 512: hidden 768,
      ffn 3072, 12 layers, 12 heads, tanh-GELU), scale_factor 4, connector
      768 * 16 -> 576, with SmolVLM-256M's preprocessor_config (longest edge
      2048, tiles of 512).  Made by convert_hf_to_gguf.py --mmproj
      --outtype f16 from a saved Idefics3ForConditionalGeneration (1-layer
      text model, 512-token vocab: only the mmproj is kept).

  bench-models/vision/smollm2-135m-smolvlm-tokens-q4_1.gguf
      the text model llama-mtmd-cli needs beside an mmproj: SmolLM2-135M
      Q4_1 (n_embd 576) with control tokens 7 and 8 renamed
      <fake_token_around_image> and <global-img>.  llama.cpp looks those up
      for idefics3 and, without them, puts token -1 into the prompt and
      aborts (GGML_ASSERT(idx >= 0) in mtmd-helper.cpp) before the overview
      tile is encoded.
  bench-models/vision/bench-512.png
      a deterministic 512 x 512 RGB test image (smooth colour waves + noise).

They live in a subdirectory so llm.bench.sh's bench-models/*.gguf does not
pick them up.  Existing files are kept.

Run:  $(scripts/venv)/bin/python scripts/make-vision-bench-models.py
Needs: torch, transformers (5.x), Pillow in that venv; scripts/fetch-models;
the llama.cpp source that scripts/build-peer unpacks.  Prints each file with its size.
"""
import json
import os
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
cache = subprocess.check_output([os.path.join(here, "cache-dir")], text=True).strip()
ver = os.environ.get("LLAMA_CPP_PYTHON_VERSION", "0.3.36")
src = os.path.join(cache, "src", f"llama_cpp_python-{ver}", "vendor", "llama.cpp")
if not os.path.isfile(os.path.join(src, "convert_hf_to_gguf.py")):
    subprocess.check_call([os.path.join(here, "build-peer")], stdout=subprocess.DEVNULL)
out = os.path.join(cache, "bench-models", "vision")
os.makedirs(out, exist_ok=True)

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402

# the converters, with llama.cpp's own gguf-py first on the path
env = dict(os.environ, PYTHONPATH=os.path.join(src, "gguf-py"))


def convert(cmd, cwd):
    r = subprocess.run([sys.executable] + cmd, cwd=cwd, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-4000:])
        sys.exit(f"make-vision-bench-models: {cmd[0]} failed ({r.returncode})")


def clip_tokenizer_files(d):
    """A 514-token byte-level CLIP vocabulary (bytes, bytes + '</w>', the two
    specials) and no merges: only so CLIPProcessor.from_pretrained loads.
    The text tower is not converted."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1))
          + list(range(ord("\u00ae"), ord("\u00ff") + 1)))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    chars = [chr(c) for c in cs]
    toks = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    with open(os.path.join(d, "vocab.json"), "w") as f:
        json.dump({t: i for i, t in enumerate(toks)}, f)
    with open(os.path.join(d, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n")
    return len(toks)


def make_clip(dst):
    # A whole CLIPModel, as openai/clip-vit-large-patch14-336 is: the legacy
    # converter reads vision_config from it, the mean/std from its processor,
    # and (transformers 5) only CLIPModel's state dict carries the
    # vision_model. prefix its renaming expects.  The text tower is a 1-layer
    # stub; the converter skips it with --llava-projector.
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        d = os.path.join(tmp, "clip-vit-large-patch14-336")
        os.makedirs(d)
        n_vocab = clip_tokenizer_files(d)
        torch.manual_seed(0)
        vision = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                      num_attention_heads=16, image_size=336, patch_size=14,
                      hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=768)
        text = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                    num_attention_heads=2, vocab_size=n_vocab, max_position_embeddings=77,
                    bos_token_id=n_vocab - 2, eos_token_id=n_vocab - 1, pad_token_id=n_vocab - 1,
                    projection_dim=768)
        cfg = CLIPConfig(text_config=text, vision_config=vision, projection_dim=768)
        CLIPModel(cfg).save_pretrained(d)
        tok = CLIPTokenizer(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt"))
        ip = CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
        CLIPProcessor(image_processor=ip, tokenizer=tok).save_pretrained(d)
        # what llava_surgery.py saves: model.mm_projector.{0,2} of LLaVA-1.5's
        # mlp2x_gelu projector, here 1024 -> 576 -> 576, float32
        g = torch.Generator().manual_seed(1)

        def rnd(*shape, std=0.02):
            return torch.randn(*shape, generator=g) * std
        proj = {
            "model.mm_projector.0.weight": rnd(576, 1024),
            "model.mm_projector.0.bias": rnd(576),
            "model.mm_projector.2.weight": rnd(576, 576),
            "model.mm_projector.2.bias": rnd(576),
        }
        pfile = os.path.join(tmp, "llava.projector")
        torch.save(proj, pfile)
        conv = os.path.join(src, "tools", "mtmd", "legacy-models", "convert_image_encoder_to_gguf.py")
        convert([conv, "-m", d, "--llava-projector", pfile, "--output-dir", tmp], tmp)
        os.replace(os.path.join(tmp, "mmproj-model-f16.gguf"), dst)


def make_siglip(dst):
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        d = os.path.join(tmp, "SmolVLM-256M-random")
        torch.manual_seed(0)
        vision = dict(model_type="idefics3_vision", hidden_size=768, intermediate_size=3072,
                      num_hidden_layers=12, num_attention_heads=12, num_channels=3,
                      image_size=512, patch_size=16, hidden_act="gelu_pytorch_tanh",
                      layer_norm_eps=1e-6, max_image_size={"longest_edge": 512})
        text = dict(model_type="llama", hidden_size=576, intermediate_size=64,
                    num_hidden_layers=1, num_attention_heads=9, num_key_value_heads=3,
                    vocab_size=512, max_position_embeddings=8192, rms_norm_eps=1e-5,
                    rope_theta=100000.0, tie_word_embeddings=True)
        cfg = Idefics3Config(vision_config=vision, text_config=text, scale_factor=4,
                             image_token_id=511, tie_word_embeddings=True)
        Idefics3ForConditionalGeneration(cfg).save_pretrained(d)
        # HuggingFaceTB/SmolVLM-256M-Instruct's preprocessor_config.json
        pp = {
            "do_convert_rgb": True, "do_image_splitting": True, "do_normalize": True,
            "do_pad": True, "do_rescale": True, "do_resize": True,
            "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
            "image_processor_type": "Idefics3ImageProcessor",
            "max_image_size": {"longest_edge": 512}, "resample": 1,
            "rescale_factor": 1 / 255, "size": {"longest_edge": 2048},
        }
        with open(os.path.join(d, "preprocessor_config.json"), "w") as f:
            json.dump(pp, f, indent=2)
        convert([os.path.join(src, "convert_hf_to_gguf.py"), d, "--mmproj", "--outtype", "f16",
                 "--outfile", dst + ".tmp"], tmp)
        os.replace(dst + ".tmp", dst)


def make_text_model(dst):
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata
    src_llm = subprocess.check_output([os.path.join(here, "fetch-models")], text=True).strip()
    r = gguf.GGUFReader(src_llm)
    toks = r.get_field("tokenizer.ggml.tokens").contents()
    # control tokens nobody prompts with, renamed; types stay CONTROL
    assert toks[7] == "<gh_stars>" and toks[8] == "<issue_start>", toks[:9]
    toks[7], toks[8] = "<fake_token_around_image>", "<global-img>"
    w = gguf.GGUFWriter(dst + ".tmp", arch=r.get_field("general.architecture").contents())
    copy_with_new_metadata(r, w, {
        "tokenizer.ggml.tokens": MetadataDetails(gguf.GGUFValueType.ARRAY, toks,
                                                 sub_type=gguf.GGUFValueType.STRING),
        "general.name": MetadataDetails(gguf.GGUFValueType.STRING, "SmolLM2 135M SmolVLM tokens"),
    }, [])
    os.replace(dst + ".tmp", dst)


def make_image(dst):
    from PIL import Image
    n = 512
    y, x = np.mgrid[0:n, 0:n].astype(np.float32) / n
    rgb = np.stack([np.sin(6.0 * x + 2.0 * y), np.cos(4.0 * y - 3.0 * x), np.sin(9.0 * x * y)], -1)
    noise = np.random.default_rng(0).normal(0.0, 0.08, rgb.shape)
    px = np.clip((rgb * 0.4 + 0.5 + noise) * 255.0, 0, 255).round().astype(np.uint8)
    Image.fromarray(px, "RGB").save(dst + ".tmp.png")
    os.replace(dst + ".tmp.png", dst)


for name, make in (("clip-l14-336-mlp-mmproj-f16.gguf", make_clip),
                   ("siglip-b16-512-idefics3-mmproj-f16.gguf", make_siglip),
                   ("smollm2-135m-smolvlm-tokens-q4_1.gguf", make_text_model),
                   ("bench-512.png", make_image)):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        make(path)
    print(f"{path} {os.path.getsize(path) / 2**20:.1f} MiB")
