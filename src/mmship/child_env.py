"""The environment mmship hands to the processes it starts (servers, Ray's processes).

A child gets what it needs to run and nothing else: variables on an allow-list of names
and prefixes (paths, locale, Python, thread counts, accelerator selection, Hugging Face's
offline switches and caches, mmship's own settings), minus any whose name looks like a
credential. So ``FRIENDLI_TOKEN``, ``HF_TOKEN``, cloud keys and the like stay in the parent
process. A secret a child does need (the server's API key) is added by its caller, for that
child only. Names listed in ``MMSHIP_CHILD_ENV`` (comma-separated) are passed as well, for
the rare setting a site needs in its servers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: Passed when set.
ALLOWED_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TERM", "COLUMNS", "NO_COLOR",
    "TMPDIR", "TEMP", "TMP", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR", "SYSTEMROOT",
    "PYTHONPATH", "PYTHONHOME", "PYTHONUNBUFFERED", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE", "PYTHONWARNINGS",
    "PYTHONIOENCODING", "PYTHONUTF8", "VIRTUAL_ENV", "CONDA_PREFIX", "LD_LIBRARY_PATH",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
    "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY",
    "TOKENIZERS_PARALLELISM",
})
#: Passed when set, for every name starting with one of these.
ALLOWED_PREFIXES = ("LC_", "MMSHIP_", "OMP_", "MKL_", "OPENBLAS_", "KMP_", "ORT_", "CUDA_", "NVIDIA_", "TRT_")
#: Never passed by the allow-list (a caller may still add such a variable explicitly).
SECRET_MARKERS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "KEY", "AUTH", "COOKIE", "SESSION")
#: Extra names to pass, comma-separated (read from the parent's environment).
EXTRA_NAMES_VARIABLE = "MMSHIP_CHILD_ENV"


def looks_secret(name: str) -> bool:
    """True when a variable's name suggests it holds a credential."""
    upper = name.upper()
    return any(marker in upper for marker in SECRET_MARKERS)


def child_environment(
    add: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The allow-listed part of ``environ`` (default: this process's environment), with
    ``add`` on top.

    :param add: variables this child needs that the allow-list does not pass (e.g.
        ``MMSHIP_API_KEY`` for the server that enforces it).
    """
    source = os.environ if environ is None else environ
    extra = {n.strip() for n in source.get(EXTRA_NAMES_VARIABLE, "").split(",") if n.strip()}
    result = {
        name: value
        for name, value in source.items()
        if name in extra or ((name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES)) and not looks_secret(name))
    }
    result.update(add or {})
    return result
