#!/usr/bin/env python3
r"""Generate the tiny vision-language fixtures in tests/data/vlm/ (committed;
rerun only to change them).

Builds two small random-init Hugging Face VLMs with fixed seeds
(transformers 5, CPU, float32, attn_implementation "eager"), converts their
vision encoders with llama.cpp's own converters and their language models
with our llama writer (gen-llm-fixtures.py's gguf_tensors: llama.cpp names,
Q/K rows permuted), and saves transformers' outputs for three shared images
as references:

  tiny-llava-mmproj-legacy.gguf
                               LlavaForConditionalGeneration's CLIP tower +
                               projector, by llama.cpp's LEGACY converter
                               tools/mtmd/legacy-models/
                               convert_image_encoder_to_gguf.py
                               --clip-model-is-vision --llava-projector
                               --use-f32 (OpenAI CLIP mean/std), kept as the
                               converter wrote it: despite --use-f32,
                               mm.0.weight, mm.2.weight and
                               v.patch_embd.weight are F16, the rest F32.
                               CLIP: d 64, ffn 128, 3 blocks (2 stored: the
                               converter drops the last), 4 heads, 56 px,
                               patch 14, quick-GELU, LN eps 1e-5; feature
                               layer -2, strategy "default"; projector GELU
                               (erf).
  tiny-llava-llm-f32.gguf      its Llama: vocab 320, d 64, 2 layers, 4 heads,
                               2 KV heads, ffn 96, rope_theta 10000, RMS eps
                               1e-5, separate output head; CONTROL "<image>"
                               = 319 (image_token_index); add_bos_token true.
  tiny-idefics3-mmproj-f32.gguf / -f16.gguf
                               Idefics3ForConditionalGeneration's SigLIP-style
                               tower + connector, by convert_hf_to_gguf.py
                               --mmproj --outtype f32 / f16 on a
                               save_pretrained checkpoint plus
                               preprocessor_config.json (no tokenizer
                               needed).  d 64, ffn 128, 2 blocks, 4 heads,
                               64 px, patch 16 (16 patches), tanh-GELU,
                               LN eps 1e-6, scale_factor 2 (4 tokens/tile).
  tiny-idefics3-llm-f32.gguf   its Llama (as above); CONTROL tokens
                               "<fake_token_around_image>" 281, "<global-img>"
                               282, "<image>" 283 (image_token_id),
                               "<row_R_col_C>" 284 + 6 (R-1) + (C-1); NORMAL
                               pieces "\n" 279 and "\n\n" 280 (llama.cpp's
                               mtmd looks them up for idefics3);
                               add_bos_token false.
  tiny-llava.vref, tiny-idefics3.vref
                               references, format below.

Weights: norm weights U(0.5, 1.5), all biases (LN biases included)
0.5 N(0, 1), token and class embeddings N(0, 1), position embeddings
0.5 N(0, 1), other weights N(0, 1/fan_in), Q/K x 1.5.  The legacy converter
stores 4-D and projector 2-D weights as F16 even with --use-f32, so the
LLaVA model's patch_embedding, linear_1 and linear_2 weights are rounded to
half precision before anything is computed: the LLaVA mmproj file then
holds exactly the weights the references were made with (weft computes
with F16 matrices in float32, so this file is tested at the F32
tolerance).  Every mmproj tensor (all three mmproj files) is checked equal to its transformers
parameter (no Q/K permutation, no transposition beyond GGUF's reversed
dims; F16 ones after rounding).

Preprocessing (as gen-image-fixtures.py): LLaVA-1.5 = convert("RGB"),
expand2square with int(mean*255), CLIPImageProcessorPil shortest_edge 56,
crop 56, bicubic, OpenAI CLIP mean/std.  Idefics3 = Idefics3ImageProcessorPil
size longest_edge 128, max_image_size longest_edge 64, LANCZOS, mean = std =
0.5, do_image_splitting (every image here is split: 128 px longest side).

Images (IMG, relative to the shared data directory): images/apple.jpg
(224x225 RGB; idefics3 2x2), mmmu-pro-sample/images/validation_Music_11_1.png
(534x206 RGBA, opaque; 1x2), mmmu-pro-sample/images/ai2d_00000539.png
(650x810 RGB; 2x2).

Reference file format (little-endian): magic "WVLM", u32 version 1, u32
n_records; per record: u32 name_len, name (UTF-8, no NUL), u32 dtype (0 f32,
1 i32, 2 UTF-8 text bytes), u32 ndim, ndim x u32 dims (outermost first),
data.  Records:
  meta/n_layer_run   i32 [1]   vision blocks run (2 for both)
  meta/image_token_id i32 [1]
  per IMG, in the order above:
  IMG/pixels_crc32 i32 [1]    zlib.crc32 of the float32 little-endian bytes
                of the exact pixel tensor transformers feeds the tower
                ([n_tiles, 3, S, S], C order; idefics3: tiles row-major,
                then the global image), stored as the u32 bit pattern (the
                C test checks its own preprocessing bit-exact by CRC, then
                encodes its own pixels)
  IMG/pixels_shape i32 [4]    n_tiles, 3, S, S
  IMG/rows_cols i32 [2]       idefics3 rows, cols (0 0 unsplit; LLaVA 0 0)
  IMG/embd      f32 [n_tiles, n_tokens, 64]  projector output (LLaVA:
                hidden_states[-2] without CLS -> mm; idefics3: connector)
  IMG/saliency  f32 [n_tiles, n_layer_run, n_patches]  from the eager
                attention weights of each block run, mean over heads:
                LLaVA the CLS query's weights on the patch keys
                (attn[:, :, 0, 1:]); idefics3 the mean over queries
                (attention each patch key receives)
  IMG/prompt    text          the user prompt with one "<image>"
  IMG/ids       i32 [T]       the prompt with "<image>" expanded by
                transformers' own LlavaProcessor / Idefics3Processor
                .replace_image_token (16 image tokens; image_seq_len 4),
                tokenized by the peer's llama-tokenize on the LLM GGUF
                (special tokens parsed, BOS as the GGUF says)
  IMG/logits    f32 [T, 320]  transformers' logits for ids + pixel_values
                (eager attention throughout)
  IMG/logits_f16kv f32 [T, 320]  the same forward with the language model's
                keys (after RoPE) and values rounded to IEEE half, as the
                F16 KV cache holds them: gen-llm-fixtures.py's registered
                "f16kv" attention (its f16kv set), set on text_config only;
                the vision tower stays eager

GGUF keys and tensors the converters wrote (tensor dims in GGUF order,
ne[0] first; blocks 0..n-1 alike):

  tiny-llava-mmproj-legacy.gguf (legacy converter; no v.post_ln, no
  clip.vision.feature_layer: block_count is already n - 1; -f32.gguf the
  same with mm.0.weight, mm.2.weight and v.patch_embd.weight F32)
    general.architecture 'clip', general.file_type 0, general.name
    'tiny-llava-clip', general.description 'image encoder for LLaVA',
    clip.has_text_encoder False, clip.has_vision_encoder True,
    clip.has_llava_projector True, clip.projector_type 'mlp',
    clip.vision.image_size 56, clip.vision.patch_size 14,
    clip.vision.embedding_length 64, clip.vision.feed_forward_length 128,
    clip.vision.projection_dim 64, clip.vision.attention.head_count 4,
    clip.vision.attention.layer_norm_epsilon 1e-5, clip.vision.block_count 2,
    clip.vision.image_mean [0.48145466, 0.4578275, 0.40821073],
    clip.vision.image_std [0.26862954, 0.26130258, 0.27577711],
    clip.use_gelu False (quick-GELU)
    mm.0.weight F16 [64, 64]      mm.0.bias F32 [64]
    mm.2.weight F16 [64, 64]      mm.2.bias F32 [64]
    v.class_embd F32 [64]         v.patch_embd.weight F16 [14, 14, 3, 64]
    v.position_embd.weight F32 [64, 17]  (class position first)
    v.pre_ln.{weight,bias} F32 [64]
    v.blk.N.attn_{q,k,v,out}.weight F32 [64, 64], .bias F32 [64]
    v.blk.N.ln1/ln2.{weight,bias} F32 [64]
    v.blk.N.ffn_down.weight F32 [64, 128], .bias [128]   (= fc1: legacy
    v.blk.N.ffn_up.weight   F32 [128, 64], .bias [64]     swap of up/down)
  tiny-idefics3-mmproj-{f32,f16}.gguf (convert_hf_to_gguf.py)
    general.architecture 'clip', general.type 'mmproj', general.name
    'Tiny Idefics3', general.size_label '134K', general.file_type 0 / 1,
    general.quantization_version 2, clip.has_vision_encoder True,
    clip.projector_type 'idefics3', clip.vision.projection_dim 64,
    clip.vision.image_size 64, clip.vision.patch_size 16,
    clip.vision.embedding_length 64, clip.vision.feed_forward_length 128,
    clip.vision.block_count 2, clip.vision.attention.head_count 4,
    clip.vision.attention.layer_norm_epsilon 1e-6,
    clip.vision.image_mean/image_std [0.5, 0.5, 0.5],
    clip.vision.projector.scale_factor 2, clip.use_gelu True,
    clip.vision.preproc_image_size 128
    mm.model.fc.weight [256, 64] (no bias)   v.patch_embd.weight
    [16, 16, 3, 64] + v.patch_embd.bias [64]   v.position_embd.weight
    [64, 16]   v.post_ln.{weight,bias} [64]   v.blk.N.attn_{q,k,v,out},
    ln1, ln2 as above;  v.blk.N.ffn_up.weight [64, 128] (= fc1),
    .bias [128];  v.blk.N.ffn_down.weight [128, 64] (= fc2), .bias [64]
    f32: all F32.  f16: the 2-D block weights and mm.model.fc.weight F16;
    patch_embd and position_embd stay F32 (the converter forces
    ".embeddings." to F32), norms and biases F32.
  LLM files: as gen-llm-fixtures.py (general.architecture 'llama', llama.*
  hyper-parameters, tokenizer.ggml.* SentencePiece vocabulary); tensors
  token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output,
  ffn_norm, ffn_gate, ffn_up, ffn_down}, output_norm, output; all F32.

The legacy converter expects transformers 4's CLIPVisionModel (tower in
.vision_model); it is run unmodified behind a few-line shim that restores
that layout (LEGACY_SHIM below).  Both families are also run through the peer's llama-mtmd-cli to check that llama.cpp
accepts the files.  The f16kv dispatch is checked on text only against
gen-llm-fixtures.py's logits_of(..., "f16kv") of the bare language model.

Run (from the repository root; needs scripts/build-peer's llama.cpp source
and binaries):
    $(scripts/venv)/bin/python scripts/gen-vlm-fixtures.py [SHARED_DATA] [--list]
--list prints every GGUF's keys and tensors (gguf-py).
"""
import importlib.util
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from types import SimpleNamespace

import numpy as np
import torch
import gguf
from PIL import Image
from transformers import (CLIPVisionConfig, Idefics3Config, Idefics3ForConditionalGeneration,
                          LlamaConfig, LlamaForCausalLM, LlavaConfig, LlavaForConditionalGeneration)
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
from transformers.models.idefics3.configuration_idefics3 import Idefics3VisionConfig
from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil
from transformers.models.idefics3.processing_idefics3 import Idefics3Processor
from transformers.models.llava.processing_llava import LlavaProcessor

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
out_dir = os.path.join(root, "tests", "data", "vlm")


def _load(name, fname):
    spec = importlib.util.spec_from_file_location(name, os.path.join(here, fname))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


llm = _load("gen_llm_fixtures", "gen-llm-fixtures.py")      # gguf_tensors, peer_dir, f16kv attention
imgfix = _load("gen_image_fixtures", "gen-image-fixtures.py")  # expand2square
torch.set_num_threads(1)

IMAGES = ["images/apple.jpg",                                # 224x225 RGB JPEG
          "mmmu-pro-sample/images/validation_Music_11_1.png",  # 534x206 RGBA (wide)
          "mmmu-pro-sample/images/ai2d_00000539.png"]          # 650x810 RGB (tall)
N_VOCAB = 320
TEXT = dict(vocab_size=N_VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
            hidden_act="silu", rms_norm_eps=1e-5, tie_word_embeddings=False,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0})


def cache_dir():
    try:
        return subprocess.check_output([os.path.join(here, "cache-dir")], text=True).strip()
    except Exception:
        return os.path.expanduser("~/.cache/weft")


def llama_cpp_src():
    d = os.path.join(cache_dir(), "src", "llama_cpp_python-0.3.36", "vendor", "llama.cpp")
    if not os.path.exists(os.path.join(d, "convert_hf_to_gguf.py")):
        sys.exit(f"llama.cpp source not found in {d} (run scripts/build-peer)")
    return d


# ---------------------------------------------------------------- weights

def randomize(model, seed, qk_scale=1.5):
    """Replace HF's init: norm weights U(0.5, 1.5), biases (norm biases
    included) 0.5 N(0, 1), token/class embeddings N(0, 1), position
    embeddings 0.5 N(0, 1), other weights N(0, 1/fan_in) (Q/K x qk_scale)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or ("norm" in name and p.dim() == 1 and name.endswith("weight")):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name or "class_embedding" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            elif "position_embedding" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                s = 1.0 / np.sqrt(int(np.prod(p.shape[1:])))
                if "q_proj" in name or "k_proj" in name:
                    s *= qk_scale
                p.copy_(s * torch.randn(p.shape, generator=g))


def round_f16(params):
    """Make weights exactly representable in IEEE half (the legacy LLaVA
    converter stores these F16 even with --use-f32)."""
    with torch.no_grad():
        for p in params:
            p.copy_(p.half().float())


def text_lm(vlm, lm_prefix):
    """A LlamaForCausalLM holding the VLM's language model and head."""
    sd = vlm.state_dict()
    lm = LlamaForCausalLM(LlamaConfig(**TEXT)).eval()
    new = {}
    for k in lm.state_dict():
        src = "lm_head.weight" if k == "lm_head.weight" else lm_prefix + k[len("model."):]
        new[k] = sd[src]
    lm.load_state_dict(new)
    ids = torch.arange(3, 40)[None]  # text only: the two must agree
    with torch.no_grad():
        assert torch.allclose(lm(input_ids=ids).logits, vlm(input_ids=ids).logits, atol=1e-5)
    return lm


def write_llm_gguf(path, lm, name, specials, add_bos):
    """As gen-llm-fixtures.py's write_gguf (F32, llama.cpp names, Q/K
    permuted), with specials {id: (text, token type)} replacing filler
    pieces of the trivial vocabulary."""
    c = lm.config
    w = gguf.GGUFWriter(path, "llama")
    w.add_name(name)
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_rope_freq_base(float(c.rope_parameters["rope_theta"]))
    w.add_vocab_size(c.vocab_size)
    w.add_file_type(0)
    toks = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    toks += [f"\u2581t{i}" for i in range(c.vocab_size - len(toks))]
    types = [2, 3, 3] + [6] * 256 + [1] * (c.vocab_size - 259)
    scores = [0.0] * 259 + [-float(i) for i in range(c.vocab_size - 259)]
    for i, (t, ty) in specials.items():
        assert i >= 259
        toks[i], types[i], scores[i] = t, ty, 0.0
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(add_bos)
    for tname, arr in llm.gguf_tensors(lm, "llama"):
        w.add_tensor(tname, arr.astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, errors="replace", **kw)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def tokenize(peer, model_path, text):
    r = run([os.path.join(peer, "llama-tokenize"), "-m", model_path, "--stdin", "--ids",
             "--no-escape", "--log-disable"], input=text)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("[")][-1]
    return np.array([int(x) for x in line.strip("[]").split(",") if x.strip()], dtype=np.int32)


def check_mtmd(peer, model, mmproj, image):
    exe = os.path.join(peer, "llama-mtmd-cli")
    if not os.path.exists(exe):
        return "not checked (no llama-mtmd-cli)"
    r = subprocess.run([exe, "-m", model, "--mmproj", mmproj, "--image", image, "-p", "Hi",
                        "-n", "2", "--temp", "0", "-t", "1", "-c", "256", "--no-warmup",
                        "--chat-template", "vicuna"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       errors="replace", timeout=300)
    if r.returncode != 0:
        err = [ln for ln in r.stderr.splitlines() if " E " in ln or "ASSERT" in ln or "error" in ln]
        sys.exit(f"llama.cpp rejects {model} + {mmproj}:\n" + "\n".join(err[-5:]))
    return "llama-mtmd-cli loads and runs it"


# ---------------------------------------------------------------- .vref

class Vref:
    def __init__(self):
        self.recs = []

    def f32(self, name, a):
        self.recs.append((name, 0, np.ascontiguousarray(a, dtype="<f4")))

    def i32(self, name, a):
        self.recs.append((name, 1, np.ascontiguousarray(a, dtype="<i4")))

    def text(self, name, s):
        self.recs.append((name, 2, np.frombuffer(s.encode("utf-8"), dtype=np.uint8)))

    def write(self, path):
        with open(path, "wb") as f:
            f.write(b"WVLM" + struct.pack("<II", 1, len(self.recs)))
            for name, dt, a in self.recs:
                nb = name.encode("utf-8")
                f.write(struct.pack("<I", len(nb)) + nb)
                f.write(struct.pack("<II", dt, a.ndim) + struct.pack(f"<{a.ndim}I", *a.shape))
                f.write(a.tobytes())


def read_vref(path):
    """{name: numpy array (f32/i32) or str} of a .vref file."""
    with open(path, "rb") as f:
        b = f.read()
    assert b[:4] == b"WVLM"
    ver, n = struct.unpack_from("<II", b, 4)
    assert ver == 1
    off, out = 12, {}
    for _ in range(n):
        (ln,) = struct.unpack_from("<I", b, off)
        name = b[off + 4:off + 4 + ln].decode("utf-8")
        off += 4 + ln
        dt, nd = struct.unpack_from("<II", b, off)
        dims = struct.unpack_from(f"<{nd}I", b, off + 8)
        off += 8 + 4 * nd
        cnt = int(np.prod(dims))
        if dt == 2:
            out[name] = b[off:off + cnt].decode("utf-8")
            off += cnt
        else:
            out[name] = np.frombuffer(b, "<f4" if dt == 0 else "<i4", cnt, off).reshape(dims)
            off += 4 * cnt
    assert off == len(b), "trailing bytes"
    return out


# ---------------------------------------------------------------- GGUF checks

def gguf_listing(path):
    r = gguf.GGUFReader(path)
    lines = []
    for f in r.fields.values():
        if f.name.startswith("GGUF.") or f.name.startswith("tokenizer.ggml.t") or f.name == "tokenizer.ggml.scores":
            continue
        v = f.contents()
        if isinstance(v, float):
            v = float(np.float32(v))
        elif isinstance(v, list) and v and isinstance(v[0], float):
            v = [float(np.float32(x)) for x in v]
        lines.append(f"  {f.name} = {v!r}")
    for t in r.tensors:
        lines.append(f"  {t.name:28s} {t.tensor_type.name:4s} {list(int(x) for x in t.shape)}")
    return lines


def check_weights(path, expect):
    """Every tensor of the GGUF equals expect[name] (HF layout) exactly."""
    r = gguf.GGUFReader(path)
    names = {t.name for t in r.tensors}
    assert names == set(expect), (path, sorted(names ^ set(expect)))
    for t in r.tensors:
        a = np.asarray(t.data).astype(np.float32)
        e = expect[t.name].detach().float().numpy()
        assert a.size == e.size, (t.name, a.shape, e.shape)
        if t.tensor_type == gguf.GGMLQuantizationType.F16:
            e = e.astype(np.float16).astype(np.float32)
        assert np.array_equal(a.reshape(-1), e.reshape(-1)), f"{path}: {t.name} differs from HF"


def pixels_records(ref, rel, px):
    """IMG/pixels_crc32 (zlib CRC-32 of the float32 little-endian bytes,
    as the u32 bit pattern) and IMG/pixels_shape [n_tiles, 3, S, S]."""
    a = np.ascontiguousarray(px, dtype="<f4")
    assert a.ndim == 4 and a.shape[1] == 3 and a.shape[2] == a.shape[3]
    crc = zlib.crc32(a.tobytes())
    ref.i32(rel + "/pixels_crc32", np.array([crc], dtype=np.uint32).view(np.int32))
    ref.i32(rel + "/pixels_shape", list(a.shape))


def vlm_logits(model, f16kv=False, **inputs):
    """The VLM's logits [T, n_vocab].  f16kv: the language model's attention
    is gen-llm-fixtures.py's registered "f16kv" (sdpa with keys after RoPE
    and values rounded to IEEE half, as the F16 KV cache holds them; its
    mask as sdpa's); the vision tower stays "eager"."""
    if f16kv:
        model.set_attn_implementation({"text_config": "f16kv"})
        assert model.config.text_config._attn_implementation == "f16kv"
        assert model.config.vision_config._attn_implementation == "eager"
    try:
        with torch.no_grad():
            return model(**inputs).logits[0]
    finally:
        model.set_attn_implementation("eager")


def check_f16kv_dispatch(model, lm):
    """The VLM's f16kv forward on text only equals gen-llm-fixtures.py's
    f16kv logits (logits_of) of the bare language model."""
    ids = np.arange(3, 40, dtype=np.int32)
    a = vlm_logits(model, f16kv=True, input_ids=torch.from_numpy(ids.astype(np.int64))[None]).numpy()
    b = llm.logits_of(lm, ids, "f16kv")
    c = llm.logits_of(lm, ids, "sdpa")
    assert np.allclose(a, b, atol=1e-5, rtol=0), np.abs(a - b).max()
    assert not np.array_equal(b, c), "f16kv rounding had no effect"


# ---------------------------------------------------------------- LLaVA

# The legacy converter expects transformers 4's CLIPVisionModel, whose
# CLIPVisionTransformer sits in .vision_model (state-dict keys
# "vision_model.*"); transformers 5 flattened it.  This shim restores that
# layout and runs the converter unmodified (argv: converter path, its args).
LEGACY_SHIM = """
import runpy, sys, torch, transformers
HF = transformers.CLIPVisionModel
class CLIPVisionModel(torch.nn.Module):
    @classmethod
    def from_pretrained(cls, path):
        m = cls()
        m.vision_model = HF.from_pretrained(path)
        return m
sys.modules["transformers"].CLIPVisionModel = CLIPVisionModel
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""

LLAVA_IMAGE_ID = 319
LLAVA_PROMPT = "USER: <image>\nWhat is shown here? ASSISTANT:"


def make_llava(shared, peer, src, tmp):
    seed = 2024
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                                       num_attention_heads=4, image_size=56, patch_size=14,
                                       hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=64),
        text_config=LlamaConfig(**TEXT), image_token_index=LLAVA_IMAGE_ID, image_seq_length=16,
        vision_feature_layer=-2, vision_feature_select_strategy="default",
        projector_hidden_act="gelu", tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(cfg).eval()
    model.set_attn_implementation("eager")
    randomize(model, seed)
    vt, proj = model.model.vision_tower, model.model.multi_modal_projector
    round_f16([vt.embeddings.patch_embedding.weight, proj.linear_1.weight,
               proj.linear_2.weight])
    assert model.lm_head.weight.data_ptr() != model.model.language_model.embed_tokens.weight.data_ptr()

    # mmproj: llama.cpp's legacy converter on a CLIPVisionModel dir + projector
    vdir = os.path.join(tmp, "tiny-llava-clip")
    vt.save_pretrained(vdir)
    pfile = os.path.join(tmp, "llava.projector")
    torch.save({"multi_modal_projector." + k: v.clone() for k, v in proj.state_dict().items()}, pfile)
    odir = os.path.join(tmp, "llava-out")
    conv = os.path.join(src, "tools", "mtmd", "legacy-models", "convert_image_encoder_to_gguf.py")
    run([sys.executable, "-c", LEGACY_SHIM, conv,
         "-m", vdir, "--llava-projector", pfile, "--output-dir", odir, "--clip-model-is-vision",
         "--use-f32", "--image-mean", *map(str, OPENAI_CLIP_MEAN), "--image-std", *map(str, OPENAI_CLIP_STD)],
        env=dict(os.environ, PYTHONPATH=os.path.join(src, "gguf-py")), cwd=tmp)
    legacy = os.path.join(out_dir, "tiny-llava-mmproj-legacy.gguf")
    shutil.move(os.path.join(odir, "mmproj-model-f32.gguf"), legacy)

    vsd = dict(vt.named_parameters())
    emb = "embeddings."
    expect = {"v.class_embd": vsd[emb + "class_embedding"],
              "v.patch_embd.weight": vsd[emb + "patch_embedding.weight"],
              "v.position_embd.weight": vsd[emb + "position_embedding.weight"],
              "v.pre_ln.weight": vsd["pre_layrnorm.weight"],
              "v.pre_ln.bias": vsd["pre_layrnorm.bias"],
              "mm.0.weight": proj.linear_1.weight, "mm.0.bias": proj.linear_1.bias,
              "mm.2.weight": proj.linear_2.weight, "mm.2.bias": proj.linear_2.bias}
    for i in range(cfg.vision_config.num_hidden_layers - 1):
        p = f"encoder.layers.{i}."
        for hf, g in [("layer_norm1", "ln1"), ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
                      ("self_attn.v_proj", "attn_v"), ("self_attn.out_proj", "attn_out"),
                      ("layer_norm2", "ln2"), ("mlp.fc1", "ffn_down"), ("mlp.fc2", "ffn_up")]:
            for wb in ("weight", "bias"):
                expect[f"v.blk.{i}.{g}.{wb}"] = vsd[f"{p}{hf}.{wb}"]
    check_weights(legacy, expect)
    assert {t.tensor_type.name for t in gguf.GGUFReader(legacy).tensors} == {"F16", "F32"}

    llm_path = os.path.join(out_dir, "tiny-llava-llm-f32.gguf")
    lm = text_lm(model, "model.language_model.")
    write_llm_gguf(llm_path, lm, "tiny-llava", {LLAVA_IMAGE_ID: ("<image>", 3)}, add_bos=True)
    check_f16kv_dispatch(model, lm)

    proc = CLIPImageProcessorPil(size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56},
                                 resample=3, image_mean=OPENAI_CLIP_MEAN, image_std=OPENAI_CLIP_STD)
    expander = SimpleNamespace(patch_size=14, num_additional_image_tokens=1,
                               vision_feature_select_strategy="default", image_token="<image>")
    n_layer_run = 2
    ref = Vref()
    ref.i32("meta/n_layer_run", [n_layer_run])
    ref.i32("meta/image_token_id", [LLAVA_IMAGE_ID])
    for rel in IMAGES:
        img = Image.open(os.path.join(shared, rel)).convert("RGB")
        img = imgfix.expand2square(img, tuple(int(x * 255) for x in OPENAI_CLIP_MEAN))
        px = torch.from_numpy(np.asarray(proc(img, return_tensors="np")["pixel_values"], dtype=np.float32))
        assert px.shape == (1, 3, 56, 56)
        with torch.no_grad():
            vo = vt(px, output_hidden_states=True, output_attentions=True)
            feats = vo.hidden_states[-2][:, 1:]
            embd = proj(feats)
            gif = model.model.get_image_features(px).pooler_output
            assert torch.equal(torch.stack(list(gif)), embd)
            sal = torch.stack([vo.attentions[l][:, :, 0, 1:].mean(1) for l in range(n_layer_run)], 1)
        text = LLAVA_PROMPT.replace("<image>", LlavaProcessor.replace_image_token(
            expander, {"pixel_values": px.numpy()}, 0))
        ids = tokenize(peer, llm_path, text)
        assert (ids == LLAVA_IMAGE_ID).sum() == 16
        inputs = dict(input_ids=torch.from_numpy(ids.astype(np.int64))[None], pixel_values=px)
        logits = vlm_logits(model, **inputs)
        logits16 = vlm_logits(model, f16kv=True, **inputs)
        pixels_records(ref, rel, px.numpy())
        ref.i32(rel + "/rows_cols", [0, 0])
        ref.f32(rel + "/embd", embd.numpy())
        ref.f32(rel + "/saliency", sal.numpy())
        ref.text(rel + "/prompt", LLAVA_PROMPT)
        ref.i32(rel + "/ids", ids)
        ref.f32(rel + "/logits", logits.numpy())
        ref.f32(rel + "/logits_f16kv", logits16.numpy())
    ref.write(os.path.join(out_dir, "tiny-llava.vref"))
    print(f"tiny-llava ({os.path.basename(legacy)}): "
          + check_mtmd(peer, llm_path, legacy, os.path.join(shared, IMAGES[0])))
    return [legacy, llm_path]


# ---------------------------------------------------------------- Idefics3

IDF_FAKE, IDF_GLOBAL, IDF_IMAGE = 281, 282, 283
IDF_PROMPT = "User:<image>Describe the picture.\nAssistant:"


def idefics3_specials():
    """{id: (text, token type)}: CONTROL (3) image tokens, and NORMAL (1)
    pieces "\n" and "\n\n" (llama.cpp's mtmd looks both up for idefics3;
    they also make the SentencePiece tokenizer merge)."""
    sp = {279: ("\n", 1), 280: ("\n\n", 1), IDF_FAKE: ("<fake_token_around_image>", 3),
          IDF_GLOBAL: ("<global-img>", 3), IDF_IMAGE: ("<image>", 3)}
    for r in range(6):
        for c in range(6):
            sp[284 + 6 * r + c] = (f"<row_{r + 1}_col_{c + 1}>", 3)
    assert max(sp) == N_VOCAB - 1
    return sp


def idefics3_processor():
    return Idefics3ImageProcessorPil(size={"longest_edge": 128}, max_image_size={"longest_edge": 64},
                                     resample=1, image_mean=[0.5] * 3, image_std=[0.5] * 3,
                                     do_image_splitting=True)


def make_idefics3(shared, peer, src, tmp):
    seed = 2025
    cfg = Idefics3Config(
        vision_config=Idefics3VisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                           num_attention_heads=4, image_size=64, patch_size=16,
                                           hidden_act="gelu_pytorch_tanh"),
        text_config=LlamaConfig(**TEXT), scale_factor=2, image_token_id=IDF_IMAGE,
        tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(cfg).eval()
    model.set_attn_implementation("eager")
    randomize(model, seed)
    assert model.lm_head.weight.data_ptr() != model.model.text_model.embed_tokens.weight.data_ptr()
    vm, conn = model.model.vision_model, model.model.connector

    # mmproj: llama.cpp's convert_hf_to_gguf.py --mmproj on a saved checkpoint
    hdir = os.path.join(tmp, "tiny-idefics3")
    model.save_pretrained(hdir)
    idefics3_processor().save_pretrained(hdir)
    outs = []
    for ot in ("f32", "f16"):
        dst = os.path.join(out_dir, f"tiny-idefics3-mmproj-{ot}.gguf")
        run([sys.executable, os.path.join(src, "convert_hf_to_gguf.py"), hdir, "--mmproj",
             "--outtype", ot, "--outfile", dst], cwd=tmp)
        outs.append(dst)

    vsd = dict(vm.named_parameters())
    expect = {"v.patch_embd.weight": vsd["embeddings.patch_embedding.weight"],
              "v.patch_embd.bias": vsd["embeddings.patch_embedding.bias"],
              "v.position_embd.weight": vsd["embeddings.position_embedding.weight"],
              "v.post_ln.weight": vsd["post_layernorm.weight"],
              "v.post_ln.bias": vsd["post_layernorm.bias"],
              "mm.model.fc.weight": conn.modality_projection.proj.weight}
    for i in range(cfg.vision_config.num_hidden_layers):
        p = f"encoder.layers.{i}."
        for hf, g in [("layer_norm1", "ln1"), ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
                      ("self_attn.v_proj", "attn_v"), ("self_attn.out_proj", "attn_out"),
                      ("layer_norm2", "ln2"), ("mlp.fc1", "ffn_up"), ("mlp.fc2", "ffn_down")]:
            for wb in ("weight", "bias"):
                expect[f"v.blk.{i}.{g}.{wb}"] = vsd[f"{p}{hf}.{wb}"]
    check_weights(outs[0], expect)
    check_weights(outs[1], expect)

    llm_path = os.path.join(out_dir, "tiny-idefics3-llm-f32.gguf")
    lm = text_lm(model, "model.text_model.")
    write_llm_gguf(llm_path, lm, "tiny-idefics3", idefics3_specials(), add_bos=False)
    check_f16kv_dispatch(model, lm)

    proc = idefics3_processor()
    expander = SimpleNamespace(fake_image_token="<fake_token_around_image>", image_token="<image>",
                               global_image_tag="<global-img>", image_seq_len=4)
    n_layer_run = 2
    ref = Vref()
    ref.i32("meta/n_layer_run", [n_layer_run])
    ref.i32("meta/image_token_id", [IDF_IMAGE])
    for rel in IMAGES:
        out = proc(Image.open(os.path.join(shared, rel)), return_tensors="np", return_row_col_info=True)
        rows, cols = int(out["rows"][0][0]), int(out["cols"][0][0])
        px = torch.from_numpy(np.asarray(out["pixel_values"], dtype=np.float32))
        mask = torch.from_numpy(np.asarray(out["pixel_attention_mask"]))
        assert px.shape[:2] == (1, rows * cols + 1 if rows else 1) and px.shape[2:] == (3, 64, 64)
        assert bool(mask.all())
        with torch.no_grad():
            vo = vm(pixel_values=px[0], output_hidden_states=True, output_attentions=True)
            embd = conn(vo.last_hidden_state)
            gif = model.model.get_image_features(px, pixel_attention_mask=mask).pooler_output
            assert torch.equal(gif[0], embd.reshape(-1, embd.shape[-1]))
            sal = torch.stack([vo.attentions[l].mean(1).mean(1) for l in range(n_layer_run)], 1)
        text = IDF_PROMPT.replace("<image>", Idefics3Processor.replace_image_token(
            expander, {"rows": [[rows]], "cols": [[cols]]}, 0))
        ids = tokenize(peer, llm_path, text)
        assert (ids == IDF_IMAGE).sum() == 4 * px.shape[1]
        inputs = dict(input_ids=torch.from_numpy(ids.astype(np.int64))[None], pixel_values=px,
                      pixel_attention_mask=mask)
        logits = vlm_logits(model, **inputs)
        logits16 = vlm_logits(model, f16kv=True, **inputs)
        pixels_records(ref, rel, px[0].numpy())
        ref.i32(rel + "/rows_cols", [rows, cols])
        ref.f32(rel + "/embd", embd.numpy())
        ref.f32(rel + "/saliency", sal.numpy())
        ref.text(rel + "/prompt", IDF_PROMPT)
        ref.i32(rel + "/ids", ids)
        ref.f32(rel + "/logits", logits.numpy())
        ref.f32(rel + "/logits_f16kv", logits16.numpy())
    ref.write(os.path.join(out_dir, "tiny-idefics3.vref"))
    print("tiny-idefics3: " + check_mtmd(peer, llm_path, outs[0], os.path.join(shared, IMAGES[0])))
    return outs + [llm_path]


def self_check(fam, n_side, n_tokens, n_layer_run, image_token):
    r = read_vref(os.path.join(out_dir, f"tiny-{fam}.vref"))
    assert int(r["meta/n_layer_run"][0]) == n_layer_run
    assert int(r["meta/image_token_id"][0]) == image_token
    assert len(r) == 2 + 9 * len(IMAGES)
    for rel in IMAGES:
        shp, crc, rc = r[rel + "/pixels_shape"], r[rel + "/pixels_crc32"], r[rel + "/rows_cols"]
        assert shp.shape == (4,) and crc.shape == (1,)
        n = int(shp[0])
        assert rc.shape == (2,) and n == (rc[0] * rc[1] + 1 if rc[0] else 1)
        assert tuple(shp[1:]) == (3, n_side, n_side)
        assert r[rel + "/embd"].shape == (n, n_tokens, 64)
        n_patches = (n_side // (14 if fam == "llava" else 16)) ** 2
        assert r[rel + "/saliency"].shape == (n, n_layer_run, n_patches)
        assert r[rel + "/prompt"].count("<image>") == 1
        ids = r[rel + "/ids"]
        assert ids.ndim == 1 and (ids == image_token).sum() == n * n_tokens
        lg, lh = r[rel + "/logits"], r[rel + "/logits_f16kv"]
        assert lg.shape == lh.shape == (len(ids), N_VOCAB)
        assert all(np.isfinite(r[rel + k]).all() for k in ("/embd", "/saliency", "/logits", "/logits_f16kv"))
        d = float(np.abs(lg - lh).max() / np.abs(lg).max())
        assert 0 < d < 1e-2, d  # K/V rounding moves logits, a little
        print(f"  {fam} {rel}: tiles {n} rows/cols {rc.tolist()} T {len(ids)} "
              f"crc32 {int(crc.view(np.uint32)[0]):08x} "
              f"logits range [{lg.min():.3f}, {lg.max():.3f}], f16kv vs f32 rel {d:.2g}")


def main():
    args = [a for a in sys.argv[1:] if a != "--list"]
    shared = args[0] if args else os.path.join(root, "..", "shared", "data")
    peer = llm.peer_dir()
    if not peer:
        sys.exit("needs the llama.cpp peer (scripts/build-peer) for llama-tokenize")
    src = llama_cpp_src()
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        files = make_llava(shared, peer, src, tmp)
        files += make_idefics3(shared, peer, src, tmp)
    self_check("llava", 56, 16, 2, LLAVA_IMAGE_ID)
    self_check("idefics3", 64, 4, 2, IDF_IMAGE)
    if "--list" in sys.argv:
        for f in files:
            print(os.path.basename(f) + ":")
            print("\n".join(gguf_listing(f)))


if __name__ == "__main__":
    main()
