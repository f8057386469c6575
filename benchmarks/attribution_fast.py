"""The first-order method against the exact one: fidelity curves over k and T_u, and cost.

    .venv/bin/python benchmarks/attribution_fast.py [--generations 16] [--targets 40]
        [--workers 2] [--timing-sizes 1000,4000]

One run, side by side on one machine:

1. Exact scores (the default `unlearning` method, T_u = 2048) for --generations generations
   sampled from the model with distinct prompts; the query gradient of each is recorded after
   every prefix of draws in --timesteps (the first-order method uses the first T_u draws of the
   same sequence).
2. The whitened training gradients (F + lambda)^-1/2 gbar_i of every training item over the
   exact method's T_s scoring draws (the first-order features before projection), timed: the
   one-time feature build next to the Fisher's.
3. First-order scores tau_i = eta phi_i . psi for every projection (none; sjlt at --dims;
   gaussian and rademacher at --dense-dims; factored at --factored-dims) and every T_u, and
   against the exact scores: Spearman over all training tracks, top-10 overlap, and the L1
   distance between the per-rights-holder splits of the ledger's default policy.
4. Self-influence (Sec. 3.2) for --targets k-means targets, each scored exactly too: the
   target's rank under the exact method and under each first-order variant, and the same
   agreement figures as for the generations.
5. At the exact method's T_u (the same theta'), the first-order scores with the top K
   (--rescore) rescored exactly: what K buys.
6. Per-generation wall time of both methods at N = the training set and each --timing-sizes
   (a training set of replicated tracks, new item ids: timing only), and the cost model's
   extrapolation to --extrapolate tracks.

Writes benchmarks/results/attribution_fast-<date>-<commit>.json and two plots beside it.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import subprocess
import time
from datetime import date
from pathlib import Path

import numpy as np
from attribution_common import DATA_DIR, REPO_ROOT, add_engine_flags, engine_config, write_json

# Distinct prompts in the style of the demo's training captions (collection, instrument, key,
# metre, tempo), naming no title; seconds and seed per generation.
PROMPTS = [
    (
        "chorale by Johann Sebastian Bach (Bach chorales), church organ, G major, 4/4, "
        "moderate tempo, 84 BPM",
        4.0,
    ),
    (
        "Irish folk tune by Traditional (O'Neill's Music of Ireland), tin whistle, "
        "D major, 6/8, fast tempo, 150 BPM",
        4.0,
    ),
    (
        "Renaissance mass by Giovanni Pierluigi da Palestrina (Palestrina masses), "
        "choir, D minor, 4/2, lively tempo, 110 BPM",
        5.0,
    ),
    (
        "string quartet by Wolfgang Amadeus Mozart (Mozart string quartets), "
        "string ensemble, B-flat major, 3/4, moderate tempo, 96 BPM",
        5.0,
    ),
    (
        "madrigal by Claudio Monteverdi (Monteverdi madrigals), choir, A minor, 4/4, "
        "slow tempo, 66 BPM",
        4.0,
    ),
    (
        "reel by Traditional (Ryan's Mammoth Collection), fiddle, G major, 4/4, "
        "fast tempo, 160 BPM",
        3.0,
    ),
    (
        "chorale by Johann Sebastian Bach (Bach chorales), string ensemble, E minor, "
        "4/4, slow tempo, 60 BPM",
        5.0,
    ),
    (
        "Trecento ballata (Trecento polyphony), recorder, F major, 6/8, moderate tempo, 100 BPM",
        4.0,
    ),
    (
        "motet by Josquin des Prez (Josquin), choir, C major, 2/2, moderate tempo, 90 BPM",
        5.0,
    ),
    (
        "string quartet by Joseph Haydn (Haydn string quartets), string ensemble, "
        "D major, 2/4, lively tempo, 120 BPM",
        4.0,
    ),
    (
        "jig by Traditional (O'Neill's Music of Ireland), fiddle, A minor, 6/8, "
        "fast tempo, 140 BPM",
        3.0,
    ),
    (
        "string quartet by Ludwig van Beethoven (Beethoven string quartets), "
        "string ensemble, F minor, 3/4, slow tempo, 72 BPM",
        5.0,
    ),
    (
        "hornpipe by Traditional (Ryan's Mammoth Collection), acoustic grand piano, "
        "B-flat major, 4/4, moderate tempo, 104 BPM",
        4.0,
    ),
    (
        "Renaissance mass by Giovanni Pierluigi da Palestrina (Palestrina masses), "
        "church organ, G minor, 4/2, slow tempo, 70 BPM",
        5.0,
    ),
    (
        "chorale by Johann Sebastian Bach (Bach chorales), choir, A major, 3/4, "
        "moderate tempo, 88 BPM",
        4.0,
    ),
    (
        "waltz by Traditional (Ryan's Mammoth Collection), accordion, C major, 3/4, "
        "lively tempo, 126 BPM",
        4.0,
    ),
    (
        "madrigal by Claudio Monteverdi (Monteverdi madrigals), string ensemble, "
        "D major, 4/4, moderate tempo, 92 BPM",
        5.0,
    ),
    (
        "Irish folk tune by Traditional (O'Neill's Music of Ireland), flute, E minor, "
        "3/4, slow tempo, 76 BPM",
        4.0,
    ),
]

_W: dict = {}


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _load(args, timings: dict | None = None):
    """Model, training set, config, store, encodings, Fisher, base losses (this process)."""
    import torch

    from attribution.engine.artifacts import ArtifactStore
    from attribution.engine.checkpoint import load_engine_model
    from attribution.engine.items import load_training_set

    torch.set_num_threads(args.threads)
    model = load_engine_model(args.checkpoint, device=args.device)
    manifest = Path(args.manifest or Path(args.checkpoint) / "training_manifest.json")
    train_set = load_training_set(manifest, model)
    cfg = engine_config(args)
    store = ArtifactStore(args.artifacts)
    timings = timings if timings is not None else {}
    started = time.perf_counter()
    encoded = store.encodings(model, train_set, cfg)
    timings["encode_s"] = time.perf_counter() - started
    started = time.perf_counter()
    fisher = store.fisher(model, encoded, train_set, cfg)
    timings["fisher_s (0 when stored)"] = time.perf_counter() - started
    started = time.perf_counter()
    base = store.base_losses(model, encoded, train_set, cfg)
    timings["base_losses_s (0 when stored)"] = time.perf_counter() - started
    return model, train_set, cfg, store, encoded, fisher, base


def _init(args) -> None:
    model, train_set, cfg, store, encoded, fisher, base = _load(args)
    _W.update(
        args=args,
        model=model,
        train_set=train_set,
        cfg=cfg,
        store=store,
        encoded=encoded,
        fisher=fisher,
        base=base,
    )


def _feature_map():
    from attribution.engine.features import FeatureMap

    return FeatureMap(_W["model"], _W["fisher"], _W["cfg"].replace(projection="none"))


def _job(job: tuple):
    kind = job[0]
    if kind == "gradients":
        return _gradients(*job[1:])
    if kind == "query":
        return _query(*job[1:])
    if kind == "exact_at":
        return _exact_at(*job[1:])
    raise AssertionError(kind)


def _gradients(start: int, stop: int, path: str):
    """Whitened gbar_i of items [start, stop) into rows of the (N, p) float32 file."""
    feature_map = _feature_map()
    rows = np.load(path, mmap_mode="r+")
    started = time.perf_counter()
    for position in range(start, stop):
        rows[position] = feature_map.item(_W["encoded"][position]).float().numpy()
    rows.flush()
    return ("gradients", start, stop, time.perf_counter() - started)


def _query(name: str, spec: dict, prefixes: list[int], exact: bool, scratch: str):
    """Prefix query gradients (whitened, saved) and, with `exact`, the exact scores."""
    import torch

    from attribution.engine.fisher import target_parameters
    from attribution.engine.items import encode_item, make_query
    from attribution.engine.methods import METHODS
    from attribution.engine.methods.first_order import step_size
    from attribution.engine.pipeline import QueryState
    from attribution.engine.sampling import generate
    from attribution.engine.self_influence import query_from_training_item
    from attribution.engine.unlearn import damping_value, eq6_update, query_gradient

    model, cfg, train_set = _W["model"], _W["cfg"], _W["train_set"]
    if "position" in spec:
        query = query_from_training_item(train_set.items[spec["position"]])
    else:
        audio, sample_rate = generate(
            model.module, model.config, spec["prompt"], spec["seconds"], spec["seed"]
        )
        query = make_query(audio, sample_rate, spec["prompt"], model, item_id=name)
    encoded = encode_item(model, query, cfg)
    params = target_parameters(model, cfg.target_layers)
    feature_map = _feature_map()
    total = max(prefixes) if not exact else cfg.unlearn_timesteps
    elapsed: dict[str, float] = {}  # draws done -> seconds (str keys: the results are JSON)
    started = time.perf_counter()

    def snapshot(done: int, sums: dict) -> None:
        if done in prefixes:
            elapsed[str(done)] = time.perf_counter() - started
            mean = {n: value * (total / done) for n, value in sums.items()}
            psi = feature_map(mean).float().numpy()  # whitened, unprojected
            np.save(Path(scratch) / f"{name}-T{done}.npy", psi)

    grad = query_gradient(
        model, encoded, cfg.replace(unlearn_timesteps=total), params, on_chunk=snapshot
    )
    unlearn_s = time.perf_counter() - started
    result = {"name": name, "unlearn_s": unlearn_s, "prefix_s": elapsed}
    if exact:
        # Eq. 6 exactly as methods/unlearning.py computes it (one step), then the exact scores
        names = list(params)
        eta = step_size(cfg, len(train_set))
        theta0 = {n: params[n].detach().clone() for n in names}
        damping = damping_value(_W["fisher"], names, cfg.damping)
        theta_prime = eq6_update(theta0, grad, _W["fisher"], eta, damping)
        state = QueryState(tensors={n: v.detach().cpu() for n, v in theta_prime.items()})
        exact_method = METHODS["unlearning"]
        prepared = exact_method.prepare(model, train_set, cfg, _W["store"], compute=False)
        scoring = time.perf_counter()
        values = exact_method.score_slice(prepared, state, 0, len(train_set))
        result["score_s"] = time.perf_counter() - scoring
        tau, _ = exact_method.finalize(prepared, state, np.asarray(values))
        result["exact_s"] = unlearn_s + result["score_s"]
        result["tau"] = tau.tolist()
        if spec.get("check"):
            # the recomposed update is the method's own theta' (bit for bit)
            own = exact_method.query_state(prepared, query)
            result["theta_prime_identical"] = all(
                torch.equal(own.tensors[n], state.tensors[n]) for n in names
            )
    return ("query", result)


def _exact_at(n_items: int):
    """Per-generation wall time of the exact method on a training set of n_items replicated
    tracks (new item ids, so new draws): query state + scoring every item."""
    from attribution.engine.items import TrainingItem, TrainingSet, encode_items
    from attribution.engine.methods import METHODS
    from attribution.engine.pipeline import Prepared
    from attribution.engine.self_influence import query_from_training_item

    model, cfg, base_set = _W["model"], _W["cfg"], _W["train_set"]
    items = [
        TrainingItem(
            item_id=f"{base_set.items[i % len(base_set)].item_id}~{i // len(base_set)}",
            audio=base_set.items[i % len(base_set)].audio,
            prompt=base_set.items[i % len(base_set)].prompt,
            seconds_start=0.0,
            seconds_total=base_set.items[i % len(base_set)].seconds_total,
        )
        for i in range(n_items)
    ]
    train_set = TrainingSet.from_items(items)
    started = time.perf_counter()
    encoded = encode_items(model, items, cfg)
    encode_s = time.perf_counter() - started
    method = METHODS["unlearning"]
    prepared = Prepared(
        method="unlearning",
        model=model,
        train_set=train_set,
        cfg=cfg,
        encode=lambda: encoded,
        artifacts={"fisher": _W["fisher"], "base_losses": np.zeros(n_items)},
        artifact_sha256={},
    )
    started = time.perf_counter()
    state = method.query_state(prepared, query_from_training_item(base_set.items[0]))
    unlearn_s = time.perf_counter() - started
    started = time.perf_counter()
    method.score_slice(prepared, state, 0, n_items)
    score_s = time.perf_counter() - started
    return (
        "exact_at",
        {
            "n": n_items,
            "encode_s": encode_s,
            "unlearn_s": unlearn_s,
            "score_s": score_s,
            "exact_s": unlearn_s + score_s,
        },
    )


# ----------------------------------------------------------------------------------------------
def holder_shares(tau: np.ndarray, ownership: list[list[tuple[int, float]]]) -> dict[int, float]:
    """Each rights holder's fraction of the pool under the ledger's default policy."""
    from ledger.splits import SplitPolicy, track_weights

    weights = track_weights([float(x) for x in tau], SplitPolicy())
    total = sum(w.weight for w in weights)
    shares: dict[int, float] = {}
    for w in weights:
        for holder, percent in ownership[w.position]:
            shares[holder] = shares.get(holder, 0.0) + w.weight / total * percent / 100
    return shares


def l1(a: dict[int, float], b: dict[int, float]) -> float:
    return sum(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b))


def agreement(fast: np.ndarray, exact: np.ndarray, ownership) -> dict[str, float]:
    from scipy.stats import spearmanr

    top_fast = set(np.argsort(-fast, kind="stable")[:10])
    top_exact = set(np.argsort(-exact, kind="stable")[:10])
    return {
        "spearman": float(spearmanr(fast, exact).statistic),
        "top10": len(top_fast & top_exact),
        "holder_l1": l1(holder_shares(fast, ownership), holder_shares(exact, ownership)),
    }


def ownership_of(train_set) -> list[list[tuple[int, float]]]:
    """(holder index, percent) per training position, from the demo catalog's CSV."""
    path = DATA_DIR / "demo" / "catalog" / "ownership_shares.csv"
    by_isrc: dict[str, list[tuple[str, float]]] = {}
    with open(path) as handle:
        for row in csv.DictReader(handle):
            by_isrc.setdefault(row["isrc"], []).append(
                (row["rights_holder"], float(row["percent"]))
            )
    names = sorted({name for shares in by_isrc.values() for name, _ in shares})
    index = {name: i for i, name in enumerate(names)}
    return [
        [(index[name], pct) for name, pct in by_isrc[item.metadata["isrc"]]]
        for item in train_set.items
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_engine_flags(parser)
    parser.add_argument("--generations", type=int, default=16)
    parser.add_argument("--timesteps", default="64,128,256,512,1024,2048")
    parser.add_argument("--target-timesteps", default="64,128,256,512,1024,2048")
    parser.add_argument(
        "--exact-targets",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="score the self-influence targets with the exact method too (their exact ranks)",
    )
    parser.add_argument("--dims", default="1024,2048,4096,8192,16384,32768")
    parser.add_argument("--dense-dims", default="2048")
    parser.add_argument("--factored-dims", default="4096,16384")
    parser.add_argument("--timing-sizes", default="1000,4000")
    parser.add_argument("--rescore", default="5,10,30,100", help="K of the exact top-K rescoring")
    parser.add_argument(
        "--no-compute",
        action="store_true",
        help="run no job: report on the jobs already saved (targets not scored yet are left out)",
    )
    parser.add_argument("--extrapolate", type=int, default=115_000)
    parser.add_argument("--scratch", default=str(DATA_DIR / "benchmarks" / "attribution_fast"))
    args = parser.parse_args()
    import torch

    from attribution.engine.projection import Projection
    from attribution.engine.scoring import rank_of
    from attribution.engine.self_influence import kmeans_targets, logmel_embeddings

    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    prefixes, target_prefixes = _ints(args.timesteps), _ints(args.target_timesteps)
    timings: dict = {}
    model, train_set, cfg, _store, encoded, _fisher, _base = _load(args, timings)
    checkpoint = model.checkpoint_sha256[:16]
    n = len(train_set)
    ownership = ownership_of(train_set)
    targets = kmeans_targets(
        logmel_embeddings(train_set, model.sample_rate), args.targets, seed=args.seed
    )
    from attribution.engine.fisher import target_parameters

    params = target_parameters(model, cfg.target_layers)
    feature_map_shapes = {name: tuple(p.shape) for name, p in params.items()}
    p_total = sum(int(np.prod(s)) for s in feature_map_shapes.values())
    # The whitened gradients do not depend on the projection: computed once per checkpoint and
    # config, and reused by a later run (with the time they took).
    unprojected = {
        k: v for k, v in cfg.features_key().items() if k not in ("projection", "projection_dim")
    }
    key = json.dumps({"checkpoint": checkpoint, **unprojected}, sort_keys=True)
    tag = hashlib.sha256(key.encode()).hexdigest()[:12]
    gradients_path = scratch / f"whitened_gradients-{tag}.npy"
    done_path = gradients_path.with_suffix(".done.json")
    reuse = done_path.is_file()
    if args.no_compute and not reuse:
        raise SystemExit(f"--no-compute: the whitened gradients {gradients_path} are not stored")
    if not reuse:
        np.lib.format.open_memmap(gradients_path, mode="w+", dtype=np.float32, shape=(n, p_total))
    del model, encoded

    jobs: list[tuple] = []
    for i, (prompt, seconds) in enumerate(PROMPTS[: args.generations]):
        spec = {"prompt": prompt, "seconds": seconds, "seed": 100 + i, "check": i == 0}
        jobs.append(("query", f"gen{i:02d}", spec, prefixes, True, str(scratch)))
    for position in targets:
        spec = {"position": position}
        name = f"target{position:03d}"
        jobs.append(("query", name, spec, target_prefixes, args.exact_targets, str(scratch)))
    chunk = max(1, n // (4 * max(1, args.workers)))
    if not reuse:
        jobs += [
            ("gradients", a, min(a + chunk, n), str(gradients_path)) for a in range(0, n, chunk)
        ]
    jobs += [("exact_at", size) for size in _ints(args.timing_sizes)]
    jobs.sort(key=lambda job: job[0] != "exact_at")  # the longest first

    # Finished jobs are kept in the scratch folder: a rerun (after a crash, or with other
    # projections) runs only what is missing.
    saved_path = scratch / f"jobs-{tag}.json"
    results: dict = {"query": {}, "gradients_s": 0.0, "exact_at": {}}
    if saved_path.is_file():
        saved = json.loads(saved_path.read_text())
        results["query"] = saved["query"]
        results["exact_at"] = {int(k): v for k, v in saved["exact_at"].items()}

    def finished(job: tuple) -> bool:
        if job[0] == "query":
            saved = results["query"].get(job[1])
            return saved is not None and (not job[4] or "tau" in saved)
        return job[0] == "exact_at" and job[1] in results["exact_at"]

    jobs = [job for job in jobs if not finished(job) and not args.no_compute]
    wall = time.perf_counter()

    def on_result(result) -> None:
        kind = result[0]
        if kind == "query":
            results["query"][result[1]["name"]] = result[1]
        elif kind == "gradients":
            results["gradients_s"] += result[3]
        else:
            results["exact_at"][result[1]["n"]] = result[1]
        saved_path.write_text(
            json.dumps({"query": results["query"], "exact_at": results["exact_at"]})
        )
        print(f"[{time.perf_counter() - wall:7.0f} s] {kind} done", flush=True)

    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers, initializer=_init, initargs=(args,)) as pool:
        for result in pool.imap_unordered(_job, jobs):
            on_result(result)
    pool_wall_s = time.perf_counter() - wall
    if reuse:
        results["gradients_s"] = json.loads(done_path.read_text())["gradients_cpu_s"]
    else:
        done_path.write_text(json.dumps({"gradients_cpu_s": results["gradients_s"]}))
    torch.set_num_threads(max(1, args.workers))

    gradients = np.load(gradients_path, mmap_mode="r")  # (N, p) whitened gbar
    eta = cfg.lr / n if cfg.lr_times_inverse_n else cfg.lr
    generations = [f"gen{i:02d}" for i in range(min(args.generations, len(PROMPTS)))]
    target_names = [
        f"target{position:03d}"
        for position in targets
        if f"target{position:03d}" in results["query"]
    ]
    exact = {g: np.array(results["query"][g]["tau"]) for g in generations}
    per_query_results = results["query"]

    def query_rows(names: list[str], ts: list[int]) -> tuple[np.ndarray, list[tuple]]:
        keys = [(name, t) for name in names for t in ts]
        return np.stack([np.load(scratch / f"{name}-T{t}.npy") for name, t in keys]), keys

    g_rows, g_keys = query_rows(generations, prefixes)
    t_rows, t_keys = query_rows(target_names, target_prefixes)
    variants = [("none", p_total)] + [("sjlt", k) for k in _ints(args.dims)]
    variants += [(kind, k) for kind in ("gaussian", "rademacher") for k in _ints(args.dense_dims)]
    variants += [("factored", k) for k in _ints(args.factored_dims)]
    table = []
    for kind, k in variants:
        projection = Projection(kind, k, feature_map_shapes, cfg.seed)
        started = time.perf_counter()
        if kind == "none":
            phi, psi_g, psi_t = gradients, g_rows, t_rows
        else:
            stacked = torch.from_numpy(np.concatenate([gradients, g_rows, t_rows]))
            projected = projection.apply_rows(stacked).numpy()  # (N + Q, k)
            phi, psi_g, psi_t = np.split(projected, [n, n + len(g_rows)])
            phi = phi.astype(np.float32)  # stored as float32
        project_s = time.perf_counter() - started
        for t in prefixes:
            rows = [
                agreement(
                    eta * (phi @ psi_g[g_keys.index((g, t))]).astype(np.float64),
                    exact[g],
                    ownership,
                )
                for g in generations
            ]
            entry = {
                "projection": kind,
                "k": projection.dim,
                "T_u": t,
                "set": "generations",
                "spearman_mean": float(np.mean([r["spearman"] for r in rows])),
                "spearman_min": float(np.min([r["spearman"] for r in rows])),
                "top10_mean": float(np.mean([r["top10"] for r in rows])),
                "holder_l1_mean": float(np.mean([r["holder_l1"] for r in rows])),
                "holder_l1_max": float(np.max([r["holder_l1"] for r in rows])),
                "project_s": project_s,
            }
            table.append(entry)
        if cfg.unlearn_timesteps in prefixes:
            # Exact rescoring of the first-order top K (Eq. 2 with the same theta' as the
            # exact method, since T_u is the exact method's): replaces their scores by the
            # exact ones; what K buys.
            t = cfg.unlearn_timesteps
            for top_k in _ints(args.rescore):
                rows = []
                for g in generations:
                    fast = eta * (phi @ psi_g[g_keys.index((g, t))]).astype(np.float64)
                    best = np.argsort(-fast, kind="stable")[:top_k]
                    fast[best] = exact[g][best]
                    rows.append(agreement(fast, exact[g], ownership))
                table.append(
                    {
                        "projection": kind,
                        "k": projection.dim,
                        "T_u": t,
                        "set": f"generations, exact rescoring of the top {top_k}",
                        "rescored": top_k,
                        "spearman_mean": float(np.mean([r["spearman"] for r in rows])),
                        "spearman_min": float(np.min([r["spearman"] for r in rows])),
                        "top10_mean": float(np.mean([r["top10"] for r in rows])),
                        "holder_l1_mean": float(np.mean([r["holder_l1"] for r in rows])),
                        "holder_l1_max": float(np.max([r["holder_l1"] for r in rows])),
                    }
                )
        for t in target_prefixes:
            ranks, exact_ranks, rows = [], [], []
            for name in target_names:
                position = int(name.removeprefix("target"))
                tau = eta * (phi @ psi_t[t_keys.index((name, t))]).astype(np.float64)
                ranks.append(rank_of(tau, position))
                saved = per_query_results[name]
                if "tau" in saved:
                    exact_tau = np.array(saved["tau"])
                    exact_ranks.append(rank_of(exact_tau, position))
                    rows.append(agreement(tau, exact_tau, ownership))
            entry = {
                "projection": kind,
                "k": projection.dim,
                "T_u": t,
                "set": "targets",
                "at_rank_1": sum(r == 1 for r in ranks),
                "targets": len(ranks),
                "worst_rank": max(ranks),
                "mean_rank": float(np.mean(ranks)),
            }
            if rows:
                entry.update(
                    exact_at_rank_1=sum(r == 1 for r in exact_ranks),
                    same_rank_as_exact=sum(a == b for a, b in zip(ranks, exact_ranks, strict=True)),
                    spearman_mean=float(np.mean([r["spearman"] for r in rows])),
                    spearman_min=float(np.min([r["spearman"] for r in rows])),
                    top10_mean=float(np.mean([r["top10"] for r in rows])),
                    holder_l1_mean=float(np.mean([r["holder_l1"] for r in rows])),
                    holder_l1_max=float(np.max([r["holder_l1"] for r in rows])),
                )
            table.append(entry)
        print(f"{kind} k={projection.dim}: projected in {project_s:.1f} s", flush=True)

    # cost: per-generation wall time of each method
    per_query = results["query"]
    exact_300 = float(np.mean([per_query[g]["exact_s"] for g in generations]))
    unlearn_2048 = float(np.mean([per_query[g]["unlearn_s"] for g in generations]))
    score_per_item = float(np.mean([per_query[g]["score_s"] for g in generations])) / n
    prefix_s = {
        t: float(np.mean([per_query[g]["prefix_s"][str(t)] for g in generations])) for t in prefixes
    }
    feature_dim = cfg.projection_dim
    projection = Projection(cfg.projection, feature_dim, feature_map_shapes, cfg.seed)
    started = time.perf_counter()
    for _ in range(3):
        projection.apply(
            {
                name: torch.from_numpy(g_rows[0][o : o + int(np.prod(s))].reshape(s))
                for name, s, o in _offsets(feature_map_shapes)
            }
        )
    psi_s = (time.perf_counter() - started) / 3
    sizes = [n, *_ints(args.timing_sizes)]
    cost = []
    for size in sizes:
        phi = np.tile(
            np.random.default_rng(0).standard_normal((1, feature_dim), dtype=np.float32), (size, 1)
        )
        psi = np.random.default_rng(1).standard_normal(feature_dim)
        started = time.perf_counter()
        for _ in range(5):
            for start in range(0, size, 64):  # shard by shard, as score_slice does
                np.asarray(phi[start : start + 64], dtype=np.float64) @ psi
        matvec_s = (time.perf_counter() - started) / 5
        exact_s = exact_300 if size == n else results["exact_at"][size]["exact_s"]
        for t in prefixes:
            fast_s = prefix_s[t] + psi_s + matvec_s
            cost.append(
                {
                    "n": size,
                    "T_u": t,
                    "k": feature_dim,
                    "exact_s": exact_s,
                    "fast_s": fast_s,
                    "ratio": exact_s / fast_s,
                    "exact_measured": True,
                }
            )
    # first order at the exact method's T_u with the top K rescored exactly: + K scorings
    for size in sizes:
        exact_s = exact_300 if size == n else results["exact_at"][size]["exact_s"]
        for top_k in _ints(args.rescore):
            rescored_s = unlearn_2048 + psi_s + matvec_s + top_k * score_per_item
            cost.append(
                {
                    "n": size,
                    "T_u": cfg.unlearn_timesteps,
                    "k": feature_dim,
                    "rescored": top_k,
                    "exact_s": exact_s,
                    "fast_s": rescored_s,
                    "ratio": exact_s / rescored_s,
                    "exact_measured": True,
                }
            )
    # cost model: exact = unlearn(2048) + N * score_per_item; fast = prefix(T_u) + psi + N k c
    matvec_per_row = matvec_s / sizes[-1]
    extrapolated = []
    for t in prefixes:
        exact_big = unlearn_2048 + args.extrapolate * score_per_item
        fast_big = prefix_s[t] + psi_s + args.extrapolate * matvec_per_row
        extrapolated.append(
            {
                "n": args.extrapolate,
                "T_u": t,
                "exact_s": exact_big,
                "fast_s": fast_big,
                "ratio": exact_big / fast_big,
            }
        )
    for top_k in _ints(args.rescore):
        exact_big = unlearn_2048 + args.extrapolate * score_per_item
        rescored_big = (
            unlearn_2048 + psi_s + args.extrapolate * matvec_per_row + top_k * score_per_item
        )
        extrapolated.append(
            {
                "n": args.extrapolate,
                "T_u": cfg.unlearn_timesteps,
                "rescored": top_k,
                "exact_s": exact_big,
                "fast_s": rescored_big,
                "ratio": exact_big / rescored_big,
            }
        )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT
    ).stdout.strip()
    report = {
        "benchmark": "attribution_fast",
        "date": date.today().isoformat(),
        "commit": commit,
        "machine": f"{multiprocessing.cpu_count()}-core CPU machine",
        "checkpoint": checkpoint,
        "command": "benchmarks/attribution_fast.py " + " ".join(_argv()),
        "config": cfg.to_dict(),
        "n_training": n,
        "parameters_unlearned": p_total,
        "eta": eta,
        "checks": {
            "theta_prime_identical_to_method": per_query[generations[0]].get(
                "theta_prime_identical"
            ),
        },
        "one_time": {
            **timings,
            "whitened_gradients_cpu_s": results["gradients_s"],
            "gradients_per_item_s": results["gradients_s"] / n,
            "bytes_per_track_at_k": {k: 4 * k for _, k in variants if _ != "none"},
            "store_bytes_100k_at_default_k": 4 * feature_dim * 100_000,
        },
        "pool_wall_s": pool_wall_s,
        "fidelity": table,
        "cost": cost,
        "exact_at": results["exact_at"],
        "extrapolated": extrapolated,
        "per_generation": {
            g: {k: v for k, v in per_query[g].items() if k != "tau"} for g in generations
        },
        "prompts": PROMPTS[: args.generations],
        "targets": targets,
        "targets_scored": len(target_names),
    }
    out = Path(args.out)
    stem = out / f"attribution_fast-{report['date']}-{commit}"
    write_json(stem.with_suffix(".json"), report)
    _plots(table, stem, cfg)
    print(
        json.dumps(
            {k: report[k] for k in ("one_time", "cost", "extrapolated")}, indent=1, default=str
        )
    )
    for row in table:
        print(row)


def _offsets(shapes):
    offset = 0
    for name in sorted(shapes):
        size = int(np.prod(shapes[name]))
        yield name, shapes[name], offset
        offset += size


def _argv() -> list[str]:
    import sys

    return sys.argv[1:]


def _plots(table: list[dict], stem: Path, cfg) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gens = [row for row in table if row["set"] == "generations"]
    figure, axis = plt.subplots(figsize=(6, 4))
    for kind in ("sjlt", "gaussian", "rademacher", "factored"):
        rows = sorted(
            (r for r in gens if r["projection"] == kind and r["T_u"] == cfg.first_order_timesteps),
            key=lambda r: r["k"],
        )
        if rows:
            axis.plot([r["k"] for r in rows], [r["spearman_mean"] for r in rows], "o-", label=kind)
    none = [r for r in gens if r["projection"] == "none" and r["T_u"] == cfg.first_order_timesteps]
    if none:
        axis.axhline(none[0]["spearman_mean"], color="grey", ls="--", label="no projection")
    axis.axhline(0.95, color="red", lw=0.8, label="target 0.95")
    axis.set_xscale("log", base=2)
    axis.set_xlabel("k (projected dimensions)")
    axis.set_ylabel("mean Spearman vs exact")
    axis.set_title(f"Fidelity against k (T_u = {cfg.first_order_timesteps})")
    axis.legend()
    figure.tight_layout()
    figure.savefig(stem.with_name(stem.name + "-k.png"), dpi=120)
    figure, axis = plt.subplots(figsize=(6, 4))
    for kind, k in sorted(
        {(r["projection"], r["k"]) for r in gens if r["projection"] in ("none", "sjlt")}
    ):
        if kind == "sjlt" and k != cfg.projection_dim:
            continue
        rows = sorted(
            (r for r in gens if r["projection"] == kind and r["k"] == k), key=lambda r: r["T_u"]
        )
        label = "no projection" if kind == "none" else f"sjlt k = {k}"
        axis.plot([r["T_u"] for r in rows], [r["spearman_mean"] for r in rows], "o-", label=label)
    axis.axhline(0.95, color="red", lw=0.8, label="target 0.95")
    axis.set_xscale("log", base=2)
    axis.set_xlabel("T_u (query-gradient draws)")
    axis.set_ylabel("mean Spearman vs exact (T_u = 2048)")
    axis.set_title("Fidelity against T_u")
    axis.legend()
    figure.tight_layout()
    figure.savefig(stem.with_name(stem.name + "-timesteps.png"), dpi=120)


if __name__ == "__main__":
    main()
