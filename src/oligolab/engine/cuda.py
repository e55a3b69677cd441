"""Optional CUDA path of the approximate-match engine: the bit-parallel Myers filter runs on the GPU, one
thread per (pattern, text segment); candidate starts come back and are verified by the same CPU routine as
the CPU path, so the sites are identical by construction (tested under numba's CUDA simulator; CI has no GPU).

Used by ``Engine(..., device="cuda")`` (:mod:`.cache`) when a CUDA GPU is present.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import cuda

from .kernels import myers_scan_source, new_rows, verify_marked_range


def available() -> bool:
    """Whether a CUDA device (or the numba simulator) can run the kernel."""
    try:
        return bool(cuda.is_available())
    except Exception:  # noqa: BLE001  (no driver, no toolkit: simply not available)
        return False


_myers_scan_device = cuda.jit(device=True)(myers_scan_source)


@cuda.jit
def _myers_kernel(text, seg_starts, seg_ends, seg_limits, seg_offsets, pattern_ids, peq, lengths, k, g, cand) -> None:
    """Thread i scans segment i % n_seg for pattern i // n_seg and marks candidate starts in ``cand``."""
    idx = cuda.grid(1)
    n_seg = seg_starts.shape[0]
    if idx >= pattern_ids.shape[0] * n_seg:
        return
    pj = idx // n_seg
    si = idx % n_seg
    j = pattern_ids[pj]
    a = seg_starts[si]
    _myers_scan_device(text, a, seg_ends[si] - a, seg_limits[si], peq, j, lengths[j], g, k, cand, pj, seg_offsets[si])


@nb.njit(cache=True, nogil=True)
def _verify_marked(
    text, seg_starts, seg_ends, seg_offsets, pattern_ids, lengths, masks, is_context, k, g, cand
) -> tuple:
    """Verify every marked candidate start with the CPU routine (same output layout as the CPU search)."""
    out = new_rows(1024)
    n_out = 0
    for pj in range(pattern_ids.shape[0]):
        j = pattern_ids[pj]
        for si in range(seg_starts.shape[0]):
            a = seg_starts[si]
            b = seg_ends[si]
            out, n_out = verify_marked_range(
                text,
                a,
                b,
                cand,
                pj,
                seg_offsets[si],
                0,
                b - a - 1,
                j,
                masks[j],
                is_context[j],
                lengths[j],
                k,
                g,
                out,
                n_out,
            )
    return out[0][:n_out], out[1][:n_out], out[2][:n_out], out[3][:n_out]


def search_patterns_cuda(
    text, seg_starts, seg_ends, seg_limits, pattern_ids, peq, lengths, masks, is_context, k, g
) -> tuple:
    """GPU filter + CPU verification; same return value as :func:`.kernels.search_patterns`."""
    lens = (seg_ends - seg_starts).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    total = int(lens.sum())
    n_threads = len(pattern_ids) * len(seg_starts)
    cand = np.zeros((len(pattern_ids), max(total, 1)), dtype=np.uint8)
    if n_threads:
        d_cand = cuda.to_device(cand)
        block = 128
        grid = (n_threads + block - 1) // block
        _myers_kernel[grid, block](
            cuda.to_device(text),
            cuda.to_device(seg_starts),
            cuda.to_device(seg_ends),
            cuda.to_device(seg_limits),
            cuda.to_device(offsets),
            cuda.to_device(pattern_ids),
            cuda.to_device(peq),
            cuda.to_device(lengths),
            k,
            g,
            d_cand,
        )
        cand = d_cand.copy_to_host()
    return _verify_marked(text, seg_starts, seg_ends, offsets, pattern_ids, lengths, masks, is_context, k, g, cand)
