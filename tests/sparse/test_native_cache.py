"""The native kernels' cache (issue 15): private, refuses what others own or can write, and loads
a library only if its sha256 is the one recorded when it was built here."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparse_rl.sparse import native

pytestmark = pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")), reason="no C compiler")


def _build() -> Path:
    """The library that native_kernels() loads (the threaded build)."""
    return native.build_library(native.SOURCE, (native.OPENMP_FLAG,))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    directory = tmp_path / "cache" / "sparse_rl"
    monkeypatch.setenv("SPARSE_RL_CACHE_DIR", str(directory))
    native.native_kernels.cache_clear()
    yield directory
    native.native_kernels.cache_clear()


def test_the_cache_is_private_and_each_library_has_its_digest(cache: Path) -> None:
    library = _build()
    assert library.parent == cache and stat.S_IMODE(cache.stat().st_mode) == 0o700
    sidecar = library.with_name(library.name + ".sha256")
    assert sidecar.read_text().strip() == native._digest(library)
    assert not library.stat().st_mode & 0o022 and _build() == library  # verified, reused


def test_a_planted_library_is_never_loaded(cache: Path, tmp_path: Path) -> None:
    library = _build()
    marker = tmp_path / "constructor_ran"
    source = tmp_path / "planted.c"
    source.write_text('#include <stdio.h>\n__attribute__((constructor)) static void run(void) '
                      f'{{ FILE *f = fopen("{marker}", "w"); if (f) fclose(f); }}\n')
    compiler = shutil.which("cc") or shutil.which("gcc")
    subprocess.run([str(compiler), "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    kernels = native.native_kernels()  # the digest does not match: rebuilt, not loaded
    assert not marker.exists()
    sidecar = library.with_name(library.name + ".sha256")
    assert kernels is not None and native._digest(library) == sidecar.read_text().strip()


@pytest.mark.parametrize("what", ["directory", "library"])
def test_a_cache_others_can_write_or_own_is_refused(cache: Path, what: str) -> None:
    library = _build()
    target = cache if what == "directory" else library
    target.chmod(0o777)
    with pytest.raises(RuntimeError, match="writable by other users"):
        _build()
    with pytest.warns(RuntimeWarning, match="native csr kernels unavailable"):
        assert native.native_kernels() is None  # the torch kernels instead
    target.chmod(0o700)
    native.native_kernels.cache_clear()
    if os.geteuid() == 0:  # only root can give a file away
        os.chown(target, 4242, 4242)
        with pytest.raises(RuntimeError, match=r"owned by another user \(uid 4242\)"):
            _build()
