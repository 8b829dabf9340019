"""The CPU flags that decide the encoder choice, per kind of CPU (read by tests.forced_cpu and sitecustomize)."""

# /proc/cpuinfo flags that decide the choice (the rest of a real flags line does not matter).
CPUS = {
    "avx2": frozenset({"avx", "avx2", "fma"}),
    "avx512_bf16": frozenset({"avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"}),
    "amx": frozenset({"avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"}),
}
FORCED_CPU_ENV = "MATERIALSEARCH_TEST_FORCED_CPU"  # not MS_: the tests pass their children everything but MS_*


def force(machine_class, name: str) -> None:
    """From now on ``machine_class.probe()`` reports CPU ``name``'s flags (the real probe runs on first use)."""
    import dataclasses

    real_probe = machine_class.probe
    forced = []

    def probe(_cls):
        if not forced:
            forced.append(dataclasses.replace(real_probe(), cpu_flags=CPUS[name]))
        return forced[0]

    machine_class.probe = classmethod(probe)
