"""`import attrlab` holds the process's oneDNN to AVX2 (lab/core/runtime.h), so that attrlab's own
kernels run and give the attrlab command's bytes on a machine with AVX-512 too; where oneDNN has
already fixed its instruction set (PyTorch shares Debian's libdnnl), it warns if that matters."""
import os
import pathlib
import subprocess
import sys

import attrlab

AVX2 = 0x7  # dnnl_cpu_isa_avx2
CODE = """
import ctypes, warnings
dnnl = ctypes.CDLL("libdnnl.so.2")
{before}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import attrlab
warned = [w for w in caught if issubclass(w.category, RuntimeWarning) and "held to AVX2" in str(w.message)]
print(dnnl.dnnl_get_effective_cpu_isa(), len(warned))
"""


def _cpu_has_avx2():
    flags = pathlib.Path("/proc/cpuinfo").read_text().split()
    return "avx2" in flags and "fma" in flags


def _run(before):
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")}
    env["PYTHONPATH"] = str(pathlib.Path(attrlab.__file__).resolve().parents[1])
    p = subprocess.run([sys.executable, "-c", CODE.format(before=before)], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    isa, warned = map(int, p.stdout.split())
    return isa, warned


def test_import_holds_onednn_to_avx2():
    isa, warned = _run("")
    if _cpu_has_avx2():
        assert isa == AVX2
    assert warned == 0


def test_import_warns_where_onednn_fixed_a_higher_isa_before():
    # Asking oneDNN for its instruction set fixes it, as its first generated kernel does.
    isa, warned = _run("dnnl.dnnl_get_effective_cpu_isa()")
    assert warned == (1 if _cpu_has_avx2() and isa != AVX2 else 0)
