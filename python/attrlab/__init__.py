"""attrlab from Python: the lab's environments, networks, attribution methods and metrics as
numpy functions (README, "From Python").

    import attrlab
    env = attrlab.Environment("multi-color-sum", size=64)
    data = env.generate(16, seed=0)           # .inputs N×C×H×W float32, .images, .labels, .gt, ...
    model = env.model()
    maps = attrlab.attribute(model, data, "label", "integrated-gradients", steps=50)
    results = attrlab.evaluate({"ig": maps}, data, metrics=["gt", "insertion"])
    print(results.table())

Everything runs in the compiled libraries (the extension attrlab._attrlab); this package only
spells keyword parameters as the command line does, runs methods written in Python, and shapes
the results. Parameters given as keywords (`steps=50`, `pixels_per_step=4`: '_' stands for the
'-' of the keys, which Python names cannot hold) are read by the same schemas as `-p`/`-o` on
the command line, so a bad value raises attrlab.Error (a ValueError) with the message the
command line prints. Maps, scores and data are the command line's, byte for byte, on the same
seeds (tests/python/).
"""

import json
import numbers
import os

import numpy as np

# As the attrlab command does (lab/core/runtime.h, prepare_process): oneDNN's OpenMP workers stop
# spinning soon after a network call. libgomp reads this when the extension loads it, just below;
# a value set by the user is kept.
if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "10000"

from . import _attrlab  # noqa: E402

__all__ = [
    "Error", "environments", "methods", "metrics", "rules", "Environment", "Dataset", "Model",
    "read_data", "write_data", "attribute", "evaluate", "Results", "run", "load_plugin",
]

#: Every error of the lab: bad input, an unknown name, a parameter out of range. A ValueError.
Error = _attrlab.Error
__version__ = _attrlab.__version__


# ------------------------------------------------------------------------------------------------
# Listings


def environments():
    """Every environment with its options, as `attrlab envs --json` lists them."""
    return json.loads(_attrlab.environments_json())


def methods():
    """Every attribution method with its parameters, as `attrlab methods --json` lists them."""
    return json.loads(_attrlab.methods_json())


def metrics():
    """Every metric with its variants and parameters, as `attrlab metrics --json` lists them."""
    return json.loads(_attrlab.metrics_json())


def rules():
    """Names of the runtime's propagation-rule composites (Model.backward's `rule`)."""
    return list(_attrlab.composite_names())


def load_plugin(path):
    """Loads a C++ plug-in (a shared library built with ATTRLAB_PLUGIN, README "Writing a C++
    plug-in") and returns the names of the methods it registered; they are then listed by
    methods() and made by attribute() like the built-in ones. The same file again is loaded once.
    A file that is no plug-in, or one built against another attrlab, raises attrlab.Error."""
    return list(_attrlab.load_plugin(os.fspath(path)))


# ------------------------------------------------------------------------------------------------
# Keyword settings, spelled as the command line takes them


def _text(key, value):
    """The text `-p KEY=TEXT` would give for a Python value."""
    if isinstance(value, (bool, np.bool_)):
        return "on" if value else "off"
    if isinstance(value, (numbers.Integral, np.integer)):
        return str(int(value))
    if isinstance(value, (numbers.Real, np.floating)):
        return repr(float(value))
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None:
        return "auto"
    if isinstance(value, (list, tuple, np.ndarray)):
        return ",".join(_text(key, v) for v in value)
    raise Error(f"{key}={value!r}: a {type(value).__name__} is not a parameter value "
                "(give a number, a bool, a string, None for auto, or a list of those)")


def _settings(items):
    return {str(k).replace("_", "-"): _text(str(k).replace("_", "-"), v) for k, v in items.items()}


def _seed(seed):
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (numbers.Integral, np.integer)) \
            or not 0 <= int(seed) < 2**64:
        raise Error(f"seed {seed!r}: must be an integer in 0..18446744073709551615")
    return int(seed)


def _int(name, value, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)) \
            or int(value) < minimum:
        raise Error(f"{name} {value!r}: must be an integer ≥ {minimum}")
    return int(value)


# ------------------------------------------------------------------------------------------------
# Environments and data


class Environment:
    """A data generator with exact ground truth and the hand-weighted network solving its task.

    `Environment(name, **options)` takes the options `attrlab generate -o` takes (`size=64`,
    `ude=False`, `patch_max=20`); environments() lists them.
    """

    def __init__(self, name, **options):
        if isinstance(name, _attrlab.Env):
            self._env = name
        else:
            self._env = _attrlab.Env(str(name), _settings(options))

    @property
    def name(self):
        return self._env.name

    @property
    def options(self):
        """Every option, resolved (as the data manifest records them)."""
        return json.loads(self._env.options_json())

    @property
    def input_shape(self):
        """One network input, (C, H, W)."""
        return tuple(self._env.input_shape)

    @property
    def num_classes(self):
        return self._env.num_classes

    @property
    def background(self):
        """The task's true background per channel, in network units."""
        return list(self._env.background)

    def generate(self, count, seed=0):
        """Samples 0..count-1 under `seed`: the same bytes as `attrlab generate --count --seed`."""
        return Dataset(self._env.generate(_int("count", count, 1), _seed(seed)))

    def model(self):
        """The environment's network (built anew on each call)."""
        return Model(self._env.model())

    def __repr__(self):
        return f"attrlab.Environment({self.name!r}, {self.options!r})"


class Dataset:
    """Generated samples with their ground truth: a data directory in memory or on disk.

    `.inputs` N×C×H×W float32 (the network input), `.images` N×H×W×3 uint8 (gray images
    repeated over the three channels), `.labels`, `.ids`, `.targets` (the output unit explaining
    each label), `.gt` {"pixel", "positive", "negative", "smooth"} N×H×W float32 (pixel and smooth
    are gt/<id>.npy and gt/<id>.smooth.npy of the data directory; positive and negative are
    pixel > 0 and pixel < 0 as 0/1), `.patches` N×H×W uint8, `.env`, `.seed`, `.manifest`.
    """

    def __init__(self, data):
        self._data = data
        self._cache = {}

    def _cached(self, key, make):
        if key not in self._cache:
            value = make()
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
            self._cache[key] = value
        return self._cache[key]

    def __len__(self):
        return self._data.size

    @property
    def env(self):
        return self._cached("env", lambda: Environment(self._data.env()))

    @property
    def seed(self):
        return self._data.seed

    @property
    def path(self):
        """The data directory read, or None for generated data."""
        return self._data.path

    @property
    def manifest(self):
        return self._cached("manifest", lambda: json.loads(self._data.manifest_json()))

    @property
    def ids(self):
        return self._cached("ids", lambda: list(self._data.ids()))

    @property
    def labels(self):
        return self._cached("labels", lambda: np.asarray(self._data.labels(), dtype=np.int64))

    @property
    def targets(self):
        return self._cached("targets", lambda: np.asarray(self._data.targets(), dtype=np.int64))

    @property
    def inputs(self):
        return self._cached("inputs", self._data.inputs)

    @property
    def images(self):
        return self._cached("images", self._data.images)

    @property
    def patches(self):
        return self._cached("patches", self._data.patches)

    @property
    def gt(self):
        def make():
            pixel = self._data.gt(False)
            return {"pixel": pixel, "positive": (pixel > 0).astype(np.float32),
                    "negative": (pixel < 0).astype(np.float32), "smooth": self._data.gt(True)}
        return self._cached("gt", make)

    def __repr__(self):
        where = f" from {self.path}" if self.path else ""
        return f"<attrlab.Dataset {self.env.name}, {len(self)} samples, seed {self.seed}{where}>"


def read_data(path):
    """Opens a data directory (from `attrlab generate` or write_data), validating it fully."""
    return Dataset(_attrlab.Data.open(os.fspath(path)))


def write_data(dataset, path):
    """Writes `dataset` as a data directory at `path` (replaced atomically when complete)."""
    if not isinstance(dataset, Dataset):
        raise Error(f"write_data: expected an attrlab.Dataset, got {type(dataset).__name__}")
    dataset._data.write(os.fspath(path))


# ------------------------------------------------------------------------------------------------
# Models


def _batch_size(x):
    shape = getattr(x, "shape", ())
    return int(shape[0]) if len(shape) >= 1 else 0


def _target_list(target, n, what="target"):
    """One output unit per sample from an int or a sequence of n ints."""
    if isinstance(target, (bool, np.bool_)):
        raise Error(f"{what} {target!r}: expected an output unit (int) or one per sample")
    if isinstance(target, (numbers.Integral, np.integer)):
        return [int(target)] * n
    array = np.asarray(target)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise Error(f"{what}: expected an output unit (int) or a 1-d integer array of one per sample, "
                    f"got {array.dtype} of shape {list(array.shape)}")
    if array.size != n:
        raise Error(f"{array.size} targets for {n} inputs")
    return [int(t) for t in array]


class Model:
    """The environment's network: forward, gradients, propagation rules, hidden layers.

    Inputs are N×C×H×W float32 arrays in network units (Dataset.inputs); `target` is an output
    unit (int) or one per sample. Other dtypes and shapes raise attrlab.Error.
    """

    def __init__(self, model):
        self._model = model

    @property
    def env(self):
        return Environment(self._model.env())

    @property
    def input_shape(self):
        return tuple(self._model.input_shape)

    @property
    def outputs(self):
        """Number of output units."""
        return self._model.outputs

    def forward(self, x, layer=None):
        """(logits, probabilities) of inputs x; probabilities is None for a network without a
        final softmax (single-color-modulo, whose outputs are the logits). With `layer`, the
        outputs of that layer (names from layers())."""
        return self._model.forward(x, layer or "")

    def predict(self, x):
        """The label the network predicts for each input (argmax, or the modulo network's
        rounded output)."""
        return np.asarray(self._model.predict(x), dtype=np.int64)

    def gradient(self, x, target, output="probability", layer=None):
        """∂ f_target / ∂ x (or ∂ f_target / ∂ the output of `layer`), shaped like x (or like the
        layer's output). `output`: "probability" (the network as is, after its final softmax) or
        "logit" (without the final softmax), as the methods' `output` parameter."""
        return self.backward(x, target, rule="gradient", output=output, layer=layer)

    def backward(self, x, target, rule="gradient", output="probability", layer=None, reference=None,
                 epsilon=1e-6, alpha=1.0, beta=0.0, times_output=None):
        """The backward signal of output[target] under a propagation-rule composite (rules():
        gradient, guided-backprop, deconvnet, lrp-epsilon, lrp-zplus, lrp-alpha-beta,
        lrp-epsilon-plus, deeplift-rescale). `times_output` seeds the pass with the output value
        instead of 1 (the relevance LRP distributes); by default on for the lrp-* rules.
        deeplift-rescale needs `reference`, one input (C×H×W)."""
        if times_output is None:
            times_output = str(rule).startswith("lrp-")
        return self._model.backward(x, _target_list(target, _batch_size(x)), str(rule), str(output),
                                    layer or "", bool(times_output), float(epsilon), float(alpha),
                                    float(beta), reference)

    def layers(self):
        """Layer names, in order ("accumulator.layers.5", ...)."""
        return list(self._model.layers())

    def layer_shape(self, layer):
        """Shape of one input's output at `layer`, batch dimension 1 included."""
        return tuple(self._model.layer_shape(layer))

    def summary(self):
        """The text `attrlab summary` prints: layers, shapes, parameters, totals."""
        return self._model.summary()

    def export(self, path, format="onnx"):
        """Writes the exact network to `path` as `attrlab export` does: format "onnx" (opset 13)
        or "torch" (an .npz archive for attrlab.torch.load)."""
        self._model.export(str(format), os.fspath(path))

    def __repr__(self):
        return f"<attrlab.Model of {self.env.name}, input {self.input_shape}, {self.outputs} outputs>"


# ------------------------------------------------------------------------------------------------
# Attribution


def _check_maps(name, maps, n):
    if not isinstance(maps, np.ndarray):
        raise Error(f"method '{name}' returned {type(maps).__name__}, expected a numpy float32 array")
    if maps.dtype != np.float32:
        raise Error(f"method '{name}' returned maps of dtype {maps.dtype}, expected float32")
    if maps.ndim not in (3, 4) or maps.shape[0] != n:
        raise Error(f"method '{name}' returned maps of shape {list(maps.shape)} for {n} inputs "
                    "(expected N×H×W or N×C×H×W)")
    if not np.isfinite(maps).all():
        raise Error(f"method '{name}' returned NaN or Inf")
    return maps


def _resolve_targets(model, x, target):
    """Per-sample output units for inputs x (a Dataset or an array)."""
    if isinstance(target, str):
        if target == "label":
            if not isinstance(x, Dataset):
                raise Error("target label: only a Dataset has labels; give output units for arrays")
            return [int(t) for t in x.targets]
        if target == "predicted":
            inputs = x.inputs if isinstance(x, Dataset) else x
            env = model._model.env()
            return [env.target_output(int(label)) for label in model.predict(inputs)]
        raise Error(f"target {target}: expected label, predicted, an output unit or one per sample")
    return _target_list(target, len(x) if isinstance(x, Dataset) else _batch_size(x))


def _method_name(method):
    return getattr(method, "__name__", type(method).__name__)


def attribute(model, x, target="label", method="saliency", *, seed=0, label=None, reference=None,
              batch=0, details=False, params=None, **kwargs):
    """Attribution maps of `method` for inputs x explaining `target`, N×C×H×W float32.

    x: a Dataset (then target "label", "predicted", an output unit or one per sample; the maps are
    those of `attrlab attribute --data DIR --method M --target T --seed S` byte for byte) or an
    N×C×H×W float32 array (target: an output unit, one per sample or "predicted").
    method: a registered name (methods()) with its parameters as keywords (`steps=50`) or in
    `params` (a dict with the '-' keys), or a Python function fn(model, x, target) -> maps.
    seed: input i is explained with a seed derived from (seed, label, i), label defaulting to the
    method's name. reference: the reference inputs (IBA statistics, DeepSHAP data:K baselines;
    default: the first 16 inputs, as the command line's --reference 16). batch: the largest number
    of inputs per network call (0: what fits in 1 GiB; never changes a result).
    details=True returns (maps, info) with info {"target", "params", "label", "evaluations",
    "convergence_delta"}.
    """
    settings = dict(params or {})
    settings.update(kwargs)
    seed = _seed(seed)
    batch = _int("batch", batch, 0)
    if callable(method) and not isinstance(method, str):
        name = label or _method_name(method)
        if settings:
            raise Error(f"parameters {sorted(settings)} given to the Python method '{name}' "
                        "(bind them with functools.partial)")
        inputs = x.inputs if isinstance(x, Dataset) else x
        targets = _resolve_targets(model, x, target)
        maps = _check_maps(name, method(model, inputs, np.asarray(targets, dtype=np.int64)), len(targets))
        info = {"target": np.asarray(targets, dtype=np.int64), "params": {}, "label": name,
                "evaluations": None, "convergence_delta": None}
        return (maps, info) if details else maps
    if not isinstance(method, str):
        raise Error(f"method: expected a method name or a function, got {type(method).__name__}")
    if not isinstance(model, Model):
        raise Error(f"model: expected an attrlab.Model, got {type(model).__name__}")
    settings = _settings(settings)
    if isinstance(x, Dataset) and reference is None and (
            isinstance(target, str) or isinstance(target, (numbers.Integral, np.integer))):
        text = target if isinstance(target, str) else str(_target_list(target, 1)[0])
        out = _attrlab.attribute_data(model._model, x._data, method, settings, text, seed, label or "", 16,
                                      batch, 16)
    else:
        inputs = x.inputs if isinstance(x, Dataset) else x
        if isinstance(x, Dataset) and reference is None:
            reference = x.inputs[:16]
        targets = _resolve_targets(model, x, target)
        out = _attrlab.attribute_inputs(model._model, inputs, targets, method, settings, seed, label or "",
                                        reference, batch)
    maps = out["maps"]
    if not details:
        return maps
    delta = out["convergence_delta"]
    info = {"target": np.asarray(out["target"], dtype=np.int64), "params": json.loads(out["params"]),
            "label": out["label"], "evaluations": out["evaluations"],
            "convergence_delta": None if delta is None else np.asarray(delta)}
    return maps, info


# ------------------------------------------------------------------------------------------------
# Evaluation


class Results(dict):
    """What evaluate() returns: a dict of tables, each a dict of numpy columns.

    "scores": sample, method, metric, variant, value (per sample, in data order);
    "aggregates": method, metric, variant, value (each metric's own summary over the samples:
    the mean, the faithfulness test's pass/fail on the mean F1);
    "curves": sample, method, metric, variant, x, y (Insertion/Deletion, Sensitivity-N);
    "directions": {(metric, variant): "higher-is-better" | "lower-is-better"}.
    """

    def value(self, method, metric, variant):
        """The aggregate of one (method, metric, variant)."""
        a = self["aggregates"]
        hit = (a["method"] == method) & (a["metric"] == metric) & (a["variant"] == variant)
        if not hit.any():
            raise Error(f"no aggregate for method {method}, metric {metric}, variant {variant}")
        return float(a["value"][hit][0])

    def table(self, columns=None, decimals=3):
        """The aggregates as a text table: a row per method, a column per metric/variant
        (`columns`: a list of "metric/variant"; default every one), '↑'/'↓' marking the direction."""
        a = self["aggregates"]
        methods = list(dict.fromkeys(a["method"].tolist()))
        keys = list(dict.fromkeys(f"{m}/{v}" for m, v in zip(a["metric"].tolist(), a["variant"].tolist())))
        if columns is not None:
            for c in columns:
                if c not in keys:
                    raise Error(f"column {c}: not a metric/variant of these results; known: {', '.join(keys)}")
            keys = list(columns)
        heads = []
        for k in keys:
            metric, variant = k.split("/", 1)
            better = self["directions"].get((metric, variant), "")
            heads.append(k + (" ↑" if better == "higher-is-better" else " ↓" if better == "lower-is-better" else ""))
        cells = [[m] + [f"{self.value(m, *k.split('/', 1)):.{decimals}f}" for k in keys] for m in methods]
        widths = [max(len(r[i]) for r in [["method"] + heads] + cells) for i in range(len(keys) + 1)]
        lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(["method"] + heads, widths)))]
        for row in cells:
            lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        return "\n".join(lines)


def _entries(maps, method):
    """[(name, spec)] from the forms evaluate() accepts."""
    if isinstance(maps, np.ndarray):
        return [(method or "maps", maps)]
    if isinstance(maps, dict):
        return [(str(k), v) for k, v in maps.items()]
    if isinstance(maps, (str,)) or callable(maps):
        maps = [maps]
    if isinstance(maps, (list, tuple)):
        out = []
        for spec in maps:
            if isinstance(spec, str):
                out.append((spec, spec))
            elif callable(spec):
                out.append((_method_name(spec), spec))
            else:
                raise Error(f"maps: a list holds method names or functions, got {type(spec).__name__}")
        return out
    raise Error(f"maps: expected an array, a method name, a function, or a dict or list of those, "
                f"got {type(maps).__name__}")


def evaluate(maps, data, metrics=("gt",), *, model=None, target="label", seed=0, unit=16, batch=256,
             method=None, params=None, **kwargs):
    """Scores attribution maps of `data`'s samples with `metrics`; returns Results (columns).

    maps: an N×H×W or N×C×H×W float32 array (named `method`, default "maps"), a method name or a
    Python function fn(model, x, target) -> maps (attributed first with attribute(), seed `seed`),
    or a dict {name: any of these} / a list of names and functions to score side by side.
    Metric parameters come as keywords (`pixels_per_step=4`) or in `params`; a key no chosen
    metric knows raises attrlab.Error. target: "label" (default), "predicted", a unit or one per
    sample (for maps given as arrays, the unit they explain). seed: sample i is scored with a seed
    derived from (seed, "metrics", i), as `attrlab run` scores; the metrics' own `seed` parameter,
    which this keyword does not set, goes in `params={"seed": ...}`. unit, batch: samples per
    metric call and perturbed inputs per network call (never change a result).
    """
    if not isinstance(data, Dataset):
        raise Error(f"data: expected an attrlab.Dataset (Environment.generate or read_data), got {type(data).__name__}")
    if isinstance(metrics, str):
        metrics = [metrics]
    model = model or data.env.model()
    seed = _seed(seed)
    unit = _int("unit", unit, 1)
    batch = _int("batch", batch, 1)
    settings = dict(params or {})
    settings.update(kwargs)
    entries, seen = [], set()
    for name, spec in _entries(maps, method):
        if name in seen:
            raise Error(f"method {name} given twice")
        seen.add(name)
        delta = None
        if isinstance(spec, np.ndarray):
            attr = spec
            targets = _resolve_targets(model, data, target)
        elif isinstance(spec, str) or callable(spec):
            attr, info = attribute(model, data, target, spec, seed=seed, label=name, details=True)
            targets = [int(t) for t in info["target"]]
            delta = info["convergence_delta"]
        else:
            raise Error(f"maps of {name}: expected an array, a method name or a function, got {type(spec).__name__}")
        entries.append(_attrlab.Entry(name, attr, targets, [] if delta is None else [float(d) for d in delta]))
    out = _attrlab.score(model._model, data._data, entries, [str(m) for m in metrics], _settings(settings), seed,
                         unit, batch)
    results = Results()
    for table in ("scores", "aggregates", "curves"):
        results[table] = {k: (np.asarray(v, dtype=np.float64) if k in ("value", "x", "y") else np.asarray(v, dtype=str))
                          for k, v in out[table].items()}
    results["directions"] = dict(out["directions"])
    return results


# ------------------------------------------------------------------------------------------------
# Experiments


def _override(key, value):
    """The `-o KEY=TEXT` item of a Python value: strings as they are, anything else as JSON."""
    key = str(key).replace("_", "-")
    if isinstance(value, str):
        return f"{key}={value}"
    if isinstance(value, os.PathLike):
        return f"{key}={os.fspath(value)}"
    if isinstance(value, np.generic):
        value = value.item()
    try:
        return f"{key}={json.dumps(value)}"
    except TypeError:
        raise Error(f"options {key}={value!r}: a {type(value).__name__} is not a setting value "
                    "(give a string, a number, a bool, or a list or dict of those)") from None


def _save_npy(path, array):
    """np.save into a temporary beside `path` (NAME.PID-N.tmp, swept if the process dies), then renamed."""
    temp = f"{path}.{os.getpid()}-0.tmp"
    try:
        with open(temp, "wb") as f:
            np.save(f, array)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise


def _write_outside_maps(name, fn, data_dir, maps_dir, target, unit):
    """fn's maps of every sample of `data_dir` in the outside-maps layout: maps_dir/<id>.npy
    (float32, as fn returned them) and maps.json naming the data's fingerprint."""
    data = read_data(data_dir)
    model = data.env.model()
    os.makedirs(maps_dir, exist_ok=True)
    ids, labels = data.ids, data.labels
    samples = []
    for begin in range(0, len(data), unit):
        end = min(len(data), begin + unit)
        x = data.inputs[begin:end]
        if target == "label":
            targets = [int(t) for t in data.targets[begin:end]]
        else:
            targets = _resolve_targets(model, x, target)
        maps = attribute(model, x, targets, fn, label=name)
        for k in range(end - begin):
            _save_npy(os.path.join(maps_dir, f"{ids[begin + k]}.npy"), maps[k])
            samples.append({"id": str(ids[begin + k]), "map": f"{ids[begin + k]}.npy",
                            "label": int(labels[begin + k]), "target": int(targets[k])})
    manifest = data.manifest
    made_for = {"env": data.env.name, "seed": data.seed, "count": len(data)}
    if "fingerprint" in manifest:
        made_for["fingerprint"] = manifest["fingerprint"]
    record = {"method": name, "data-manifest": made_for, "samples": samples}
    temp = os.path.join(maps_dir, f"maps.json.{os.getpid()}-0.tmp")
    with open(temp, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    os.replace(temp, os.path.join(maps_dir, "maps.json"))


def run(experiment, *, out, extra_methods=None, options=None, maps=None, resume=False, force=False, quiet=False):
    """Runs an experiment as `attrlab run EXPERIMENT -o K=V ... --out OUT` does, with methods
    written in Python joining it; returns a dict {"results", "report_html", "report_md", "data",
    "units", "skipped", "maps"}.

    experiment: a shipped name ("unseen-data-effect", see `attrlab run --list`) or a JSON config
    file. options: {dotted key: value} as `-o` takes them (`{"count": 8, "methods.IG.params.steps":
    16}`; a list or dict value, e.g. "methods", is given as JSON). extra_methods: {name: fn} with
    fn(model, x, target) -> maps as attribute() takes Python methods. With them, in one call: the
    experiment's data stage (`--stage data`), fn on every sample of every model's data directory
    (called once per `unit` samples, explaining the experiment's `target`), the maps written in the
    layout of outside methods — maps/<name>/<model>/<id>.npy (float32) and maps.json naming the
    data's fingerprint, `maps` defaulting to OUT/outside-maps — and the experiment run on
    (`--resume`) with each name as a method {"name": name, "maps": DIR}: scored, tabled, ranked
    and correlated like a built-in method. resume, force, quiet: as `attrlab run`'s flags.
    """
    if isinstance(out, os.PathLike):
        out = os.fspath(out)
    if not isinstance(out, str) or not out:
        raise Error("out: the run directory is required")
    if isinstance(experiment, os.PathLike):
        experiment = os.fspath(experiment)
    items = [_override(k, v) for k, v in (options or {}).items()]
    extra = dict(extra_methods or {})
    for name, fn in extra.items():
        if not isinstance(name, str) or not name:
            raise Error(f"extra_methods: a method name must be a non-empty string, got {name!r}")
        if not callable(fn):
            raise Error(f"extra_methods {name}: expected a function fn(model, x, target) -> maps, "
                        f"got {type(fn).__name__}")
    if not extra:
        summary = _attrlab.run_experiment(experiment, items, [], out, "all", resume, force, quiet)
        summary["maps"] = {}
        summary.pop("config")
        return summary
    root = os.path.abspath(os.fspath(maps) if maps is not None else os.path.join(out, "outside-maps"))
    outside = [(name, os.path.join(root, name)) for name in extra]
    data = _attrlab.run_experiment(experiment, items, outside, out, "data", resume, force, quiet)
    config = json.loads(data["config"])
    for name, fn in extra.items():
        for data_dir in data["data"]:
            model = os.path.basename(os.path.normpath(data_dir))
            _write_outside_maps(name, fn, data_dir, os.path.join(root, name, model), config["target"],
                                int(config["unit"]))
    summary = _attrlab.run_experiment(experiment, items, outside, out, "all", True, False, quiet)
    summary.pop("config")
    summary["maps"] = dict(outside)
    return summary
