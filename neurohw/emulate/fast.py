"""Optional compiled LIF kernel (numba): the same integers as :func:`.steps.lif_step`, fused.

numpy evaluates :func:`~neurohw.emulate.steps.lif_step` as about twenty
whole-array passes, each allocating a temporary; for a batch that is most of
the emulator's time.  :class:`LIFStepper` does all phases for one
neuron in registers, updating ``u``/``v`` in place, and splits the batch over
the CPU cores.  It is used by :func:`neurohw.emulate.run` when numba is
installed (``engine="auto"``); ``engine="numpy"`` forces the reference path.
Every phase, wrap and rounding is the one documented in ``steps.lif_step``;
the tests run both paths on random networks over the full parameter range
and require identical integers.
"""

from __future__ import annotations

import os
import time

import numpy as np

__all__ = ["available", "LIFStepper", "SpikeSum", "prefer_spike_sum",
           "PARALLEL_MIN_BATCH", "blas_single_thread", "Threads", "free_cores", "usable_cores",
           "ChainRunner"]

PARALLEL_MIN_BATCH = 16
"""Batches of at least this many samples may use the multi-threaded kernels."""

# OpenMP workers that wait passively (sleep on a futex) instead of spinning: a spinning
# worker on a machine where another process holds a core steals the time slice the
# working thread needs, and every per-step barrier then costs a scheduler tick (a batch
# run fell 16x beside one CPU-bound process; with PASSIVE it kept its speed, see
# docs/performance.md).  Read by libgomp / libiomp when numba first loads them, so this
# must run before numba's threading layer starts; a value the user set wins.
for _k, _v in (("OMP_WAIT_POLICY", "PASSIVE"), ("KMP_BLOCKTIME", "0")):
    os.environ.setdefault(_k, _v)

try:  # numba is optional: without it the numpy path runs
    import numba as _nb
except ImportError:  # pragma: no cover - exercised where numba is missing
    _nb = None

def available() -> bool:
    """True when the compiled kernel can run (numba importable)."""
    return _nb is not None


def loaded() -> bool:
    """True when the serial LIF kernels or the chain loops (always run from their
    parallel compilation) hold a compiled signature in this process (compiled or loaded
    from numba's cache)."""
    if _nb is None:
        return False
    return any(k.signatures
               for k in (_kernels[0], _kernels_uniform[0], _chain_kernel, _chunk_kernel))


def _jit(**kw):
    """``numba.njit`` with an on-disk cache where one can be written.

    numba refuses ``cache=True`` (RuntimeError at decoration) when neither the
    package's ``__pycache__`` nor a user cache directory is writable, e.g. a
    read-only install; the kernels then compile in memory each process.
    """
    def deco(fn):
        try:
            return _nb.njit(cache=True, **kw)(fn)
        except RuntimeError:
            return _nb.njit(cache=False, **kw)(fn)
    return deco


if _nb is not None:
    @_jit(inline="always")
    def _wrap32(x):
        return ((x + 2147483648) & 4294967295) - 2147483648

    @_jit(inline="always")
    def _decay(x, f, shift):
        p = x * f  # |x| <= 2**31, f <= 2**shift <= 2**31: fits int64
        if p >= 0:
            return p >> shift
        return -((-p) >> shift)

    @_jit(inline="always")
    def _one(u, v, a, du, dv, bias, vth, shift, half, dshift):
        # widen, then shift: the low 32 bits of the int64 shift are exact (modulo 2**64)
        u = _wrap32(_decay(u, du, dshift) + _wrap32(np.int64(a) << shift))
        uw = 0
        if u > half:
            u -= 2 * half
            uw = 1
        elif u <= -half:
            u += 2 * half
            uw = 1
        raw = _wrap32(_decay(v, dv, dshift) + u + bias)
        v = raw
        if v > half - 1:
            v = half - 1
        elif v < -(half - 1):
            v = -(half - 1)
        vc = 1 if v != raw else 0
        s = 1 if v > vth else 0
        if s:
            v = 0
        return u, v, s, uw, vc

    def _lif_body(u, v, a, prm, per, s_out, counts):
        # per[0..3, i]: decay_u, decay_v, bias, vth_scaled of neuron i
        B, n = u.shape
        shift, half, dshift = prm[0], prm[1], prm[2]
        for b in _nb.prange(B):  # prange is plain range when compiled without parallel
            cw = 0
            cc = 0
            for i in range(n):
                uu, vv, s, uw, vc = _one(u[b, i], v[b, i], a[b, i], per[0, i], per[1, i],
                                         per[2, i], per[3, i], shift, half, dshift)
                u[b, i] = uu
                v[b, i] = vv
                s_out[b, i] = s
                cw += uw
                cc += vc
            counts[0, b] += cw
            counts[1, b] += cc

    def _lif_body_uniform(u, v, a, prm, bias, s_out, counts):
        # the same step with du, dv, vth shared by all neurons (held in registers):
        # prm = act_shift, half, decay_bits, decay_u, decay_v, vth_scaled
        B, n = u.shape
        shift, half, dshift, du, dv, vth = prm[0], prm[1], prm[2], prm[3], prm[4], prm[5]
        for b in _nb.prange(B):
            cw = 0
            cc = 0
            for i in range(n):
                uu, vv, s, uw, vc = _one(u[b, i], v[b, i], a[b, i], du, dv, bias[i], vth,
                                         shift, half, dshift)
                u[b, i] = uu
                v[b, i] = vv
                s_out[b, i] = s
                cw += uw
                cc += vc
            counts[0, b] += cw
            counts[1, b] += cc

    @_jit(inline="always")
    def _wrap_bits(x, bits):
        half = np.int64(1) << (bits - 1)
        return ((x + half) & ((half << 1) - 1)) - half

    def _lif_body_ext(u, v, ref, a, prm, per, s_out, counts):
        # steps._lif_step_ext fused: Loihi 1 rules or Lava's, [vmin, vmax], refractory.
        # prm = act_shift, half, decay_bits, vmin, vmax, loihi1, dendrite_bits, has_ref,
        #       state_bits; per[0..4, i] = decay_u, decay_v, bias, vth_scaled, refract_delay
        B, n = u.shape
        shift, half, dshift = prm[0], prm[1], prm[2]
        vmin, vmax, l1, dbits, has_ref, sbits = prm[3], prm[4], prm[5], prm[6], prm[7], prm[8]
        # ELIF table (steps.elif_term): prm[9] = N (0: none), prm[10] = lo, prm[11] = shift,
        # prm[12:12 + N] = the table
        nlut, llo, lsh = prm[9], prm[10], prm[11]
        for b in _nb.prange(B):
            cw = 0
            cc = 0
            for i in range(n):
                q = _wrap_bits(np.int64(a[b, i]) << shift, dbits)
                e = np.int64(0)
                if nlut > 0:
                    k = (v[b, i] - llo) >> lsh
                    if k >= 0:
                        if k >= nlut:
                            k = nlut - 1
                        e = prm[12 + k]
                if l1:
                    uraw = _decay(u[b, i], per[0, i], dshift) + q
                    uu = _wrap_bits(uraw, sbits)
                    u2raw = uu + per[2, i]
                    u2 = _wrap_bits(u2raw, sbits)
                    uw = 1 if (uu != uraw or u2 != u2raw) else 0
                    raw = _decay(v[b, i], per[1, i], dshift) + u2 + e
                else:
                    uu = _wrap32(_decay(u[b, i], per[0, i], dshift) + q)
                    uw = 0
                    if uu > half:
                        uu -= 2 * half
                        uw = 1
                    elif uu <= -half:
                        uu += 2 * half
                        uw = 1
                    raw = _wrap32(_decay(v[b, i], per[1, i], dshift) + uu + per[2, i] + e)
                vv = raw
                if vv > vmax:
                    vv = vmax
                elif vv < vmin:
                    vv = vmin
                vc = 1 if vv != raw else 0
                if has_ref and ref[b, i] > 0:
                    vv = 0
                s = 1 if vv > per[3, i] else 0
                if s:
                    vv = 0
                if has_ref:
                    r = per[4, i] if s else ref[b, i]
                    ref[b, i] = r - 1 if r > 0 else 0
                u[b, i] = uu
                v[b, i] = vv
                s_out[b, i] = s
                cw += uw
                cc += vc
            counts[0, b] += cw
            counts[1, b] += cc

    def _variant(fn, parallel: bool):
        """A copy of ``fn`` named ``NAME_serial`` / ``NAME_parallel``.  numba's on-disk
        cache names its files after the function's qualified name and keys them by
        signature only, not by ``parallel``: compiling one function twice made both
        dispatchers load whichever variant was cached first, so the "serial" kernels
        of single-sample runs were in fact threaded (4x slower with passive OpenMP
        waits, and the cause of the collapse beside a busy process)."""
        import types

        name = f"{fn.__name__}_{'parallel' if parallel else 'serial'}"
        g = types.FunctionType(fn.__code__, fn.__globals__, name, fn.__defaults__,
                               fn.__closure__)
        g.__qualname__ = name
        g.__module__ = fn.__module__
        return g

    # (serial, parallel) compilations of the same bodies, cached separately
    _kernels = tuple(_jit(parallel=p)(_variant(_lif_body, p)) for p in (False, True))
    _kernels_uniform = tuple(_jit(parallel=p)(_variant(_lif_body_uniform, p))
                             for p in (False, True))
    _kernels_ext = tuple(_jit(parallel=p)(_variant(_lif_body_ext, p)) for p in (False, True))

    # ---- weight-row sums held in SIMD registers -------------------------------------
    # numba's loops keep a row sum in memory (load, add, store per spiking input), and
    # numba does not run LLVM's SLP vectoriser, so a sum kept in scalar locals stays
    # scalar.  These intrinsics emit the loop in LLVM IR over vectors of 512 bits
    # (<32 x i16>, <16 x i32> or <8 x i64>: lowered to AVX-512 registers, or to two
    # 256-bit halves on CPUs without it): V accumulators stay in registers while the
    # rows of all spiking inputs are added, then are stored once.  Integer adds wrap
    # modulo 2**bits, so the result is exact whenever the final sum fits the type
    # (ChainRunner picks the type from each output's sum of |w|).
    from numba.core import cgutils as _cg
    from numba.core import types as _nbt
    from numba.extending import intrinsic as _intrinsic
    from llvmlite import ir as _ir

    VEC_BYTES = 64  # the vector width the rows are padded to (512 bits)
    #: LLVM's vector.compress intrinsic exists from LLVM 19 (numba's llvmlite >= 0.45);
    #: before, _vlist stores lane by lane (same result).  A list, so tests can force it.
    VECTOR_COMPRESS = [__import__("llvmlite.binding", fromlist=["x"]).llvm_version_info
                       >= (19,)]

    def _splat(builder, vty, x):
        v = builder.insert_element(_ir.Constant(vty, _ir.Undefined), x,
                                   _ir.Constant(_ir.IntType(32), 0))
        return builder.shuffle_vector(v, _ir.Constant(vty, _ir.Undefined),
                                      _ir.Constant(_ir.VectorType(_ir.IntType(32), vty.count),
                                                   [0] * vty.count))

    @_intrinsic
    def _vlist(typingctx, src, n, stride, w0, idx):
        # The offsets w0 + j*stride of the inputs j < 8*floor(n/8) with src[j] != 0, in
        # order, into idx[0:k]; returns k.  Eight inputs at a time: a compare gives the
        # mask, LLVM's vector.compress packs the selected offsets (vpcompressq), and all
        # eight lanes are stored at idx[k] (idx needs 8 spare entries).
        if not (isinstance(src, _nbt.Array) and src.ndim == 1 and src.layout == "C"
                and src.dtype in (_nbt.int8, _nbt.uint8)):
            return None  # the loads below read 8 contiguous bytes
        sig = _nbt.int64(src, n, stride, w0, idx)

        def codegen(context, builder, sig, args):
            sa = context.make_array(sig.args[0])(context, builder, args[0])
            ia = context.make_array(sig.args[4])(context, builder, args[4])
            i64, i8 = _ir.IntType(64), _ir.IntType(8)
            v8 = _ir.VectorType(i64, 8)
            b8 = _ir.VectorType(i8, 8)
            m8 = _ir.VectorType(_ir.IntType(1), 8)

            def as64(j):
                return context.cast(builder, args[j], sig.args[j], _nbt.int64)

            n_, st_, w0_ = as64(1), as64(2), as64(3)
            compress = VECTOR_COMPRESS[0]
            if compress:
                comp = _cg.get_or_insert_function(
                    builder.module, _ir.FunctionType(v8, [v8, m8, v8]),
                    "llvm.experimental.vector.compress.v8i64")
            pop = _cg.get_or_insert_function(builder.module, _ir.FunctionType(i8, [i8]),
                                             "llvm.ctpop.i8")
            sst = _splat(builder, v8, st_)
            offs = _cg.alloca_once_value(builder, builder.add(
                builder.mul(_ir.Constant(v8, list(range(8))), sst), _splat(builder, v8, w0_)))
            step = builder.mul(sst, _ir.Constant(v8, [8] * 8))
            k = _cg.alloca_once_value(builder, _ir.Constant(i64, 0))
            with _cg.for_range(builder, builder.ashr(n_, _ir.Constant(i64, 3))) as loop:
                p = builder.gep(sa.data, [builder.shl(loop.index, _ir.Constant(i64, 3))])
                m = builder.icmp_unsigned("!=", builder.load(builder.bitcast(p, b8.as_pointer()),
                                                             align=1), _ir.Constant(b8, [0] * 8))
                o = builder.load(offs)
                kk = builder.load(k)
                if compress:
                    c = builder.call(comp, [o, m, _ir.Constant(v8, _ir.Undefined)])
                    builder.store(c, builder.bitcast(builder.gep(ia.data, [kk]),
                                                     v8.as_pointer()), align=8)
                else:  # LLVM before 19: each lane stored in turn, k advanced by its bit
                    pos = kk
                    for lane in range(8):
                        li = _ir.Constant(_ir.IntType(32), lane)
                        builder.store(builder.extract_element(o, li),
                                      builder.gep(ia.data, [pos]))
                        pos = builder.add(pos, builder.zext(builder.extract_element(m, li), i64))
                cnt = builder.zext(builder.call(pop, [builder.bitcast(m, i8)]), i64)
                builder.store(builder.add(kk, cnt), k)
                builder.store(builder.add(o, step), offs)
            return builder.load(k)
        return sig, codegen

    @_intrinsic
    def _vrows(typingctx, w, off, idx, k, acc, a0, nvec):
        # acc[a0 : a0 + nvec*lanes] = sum over m < k of w[idx[m] + off : ... + nvec*lanes]
        # for nvec in 1..8 (a switch over eight loops, one per vector count); lanes per
        # 512 bits of acc's type, w's type no wider than acc's.  Rows are
        # added ``unroll`` at a time into as many accumulator sets (summed at the end):
        # independent adds and less loop overhead per row (1.25 -> 0.73 ns per
        # 100-output int16 row measured, four sets of four vectors).
        if w.dtype.bitwidth > acc.dtype.bitwidth:
            return None
        sig = _nbt.void(w, off, idx, k, acc, a0, nvec)

        def codegen(context, builder, sig, args):
            wa = context.make_array(sig.args[0])(context, builder, args[0])
            ia = context.make_array(sig.args[2])(context, builder, args[2])
            oa = context.make_array(sig.args[4])(context, builder, args[4])
            # the sums in acc's type (512-bit vectors); the weights may be stored
            # narrower (fewer bytes to load) and are sign-extended after the load
            ety = context.get_value_type(sig.args[4].dtype)
            wty = context.get_value_type(sig.args[0].dtype)
            lanes = VEC_BYTES * 8 // ety.width
            vty = _ir.VectorType(ety, lanes)
            vptr = vty.as_pointer()
            wvptr = _ir.VectorType(wty, lanes).as_pointer()
            i64 = _ir.IntType(64)

            def as64(j):
                return context.cast(builder, args[j], sig.args[j], _nbt.int64)

            off_, k_, a0_, nv_ = as64(1), as64(3), as64(5), as64(6)
            al = ety.width // 8

            def loops(nvec):
                unroll = 4 if nvec <= 4 else 2
                sets = [[_cg.alloca_once_value(builder, _ir.Constant(vty, [0] * lanes))
                         for _ in range(nvec)] for _ in range(unroll)]

                def add_row(m, accs):
                    base = builder.add(builder.load(builder.gep(ia.data, [m])), off_)
                    for q in range(nvec):
                        p = builder.gep(wa.data, [builder.add(base, _ir.Constant(i64, q * lanes))])
                        row = builder.load(builder.bitcast(p, wvptr), align=wty.width // 8)
                        if wty.width < ety.width:
                            row = builder.sext(row, vty)
                        builder.store(builder.add(builder.load(accs[q]), row), accs[q])

                whole = builder.sdiv(k_, _ir.Constant(i64, unroll))
                with _cg.for_range(builder, whole) as loop:
                    m0 = builder.mul(loop.index, _ir.Constant(i64, unroll))
                    for u in range(unroll):
                        add_row(builder.add(m0, _ir.Constant(i64, u)), sets[u])
                with _cg.for_range_slice(builder, builder.mul(whole, _ir.Constant(i64, unroll)),
                                         k_, _ir.Constant(i64, 1)) as (m, _):
                    add_row(m, sets[0])
                for q in range(nvec):
                    tot = builder.load(sets[0][q])
                    for u in range(1, unroll):
                        tot = builder.add(tot, builder.load(sets[u][q]))
                    p = builder.gep(oa.data, [builder.add(a0_, _ir.Constant(i64, q * lanes))])
                    builder.store(tot, builder.bitcast(p, vptr), align=al)

            end = builder.append_basic_block("vrows.end")
            switch = builder.switch(nv_, end)
            for nvec in range(1, 9):
                case = builder.append_basic_block(f"vrows.{nvec}")
                switch.add_case(_ir.Constant(i64, nvec), case)
                builder.position_at_end(case)
                loops(nvec)
                builder.branch(end)
            builder.position_at_end(end)
            return context.get_dummy_value()
        return sig, codegen

    @_jit(inline="always")
    def _vec_row_sums(src, nin, idx, wpad, w0, stride, acc, a0, lanes):
        # acc[a0 : a0 + stride] = the sum of the padded weight rows wpad[w0 + j*stride:]
        # [:stride] of the inputs j < nin with src[j] != 0 (stride: a multiple of lanes;
        # idx: int64, nin + 8 entries).  The spiking inputs' row offsets are listed
        # (_vlist, then the last nin % 8 inputs), then the rows added, eight vectors
        # (256 int16 sums) per pass over the list.
        k = _vlist(src, nin, stride, w0, idx)
        for j in range((nin >> 3) << 3, nin):
            idx[k] = w0 + j * stride
            k += src[j] != 0
        nv = stride // lanes
        g = 0
        while g < nv:
            r = min(nv - g, 8)
            o = g * lanes
            _vrows(wpad, o, idx, k, acc, a0 + o, r)
            g += r

    @_jit(inline="always")
    def _lif_rows(u, v, buf, per, s, b, o, e, shift, half, dshift):
        # _one for neurons o..e-1 of sample b (u, v, buf (B, N); per (4, N); s (N,)),
        # branch-free so LLVM vectorises it.  The index is unsigned, so numba adds no
        # negative-index selects (which stop vectorisation), and rows are indexed in
        # place (slicing them each step cost more than the arithmetic).  Truncation
        # toward zero of the decay: (p + ((p >> 63) & (2**dshift - 1))) >> dshift.
        # Returns (u wraps, v saturations).
        rnd = (np.int64(1) << dshift) - 1
        full = 2 * half
        vlim = half - 1
        cw = 0
        cc = 0
        for i in range(np.uint64(o), np.uint64(e)):
            p = u[b, i] * per[0, i]
            q = buf[b, i] << shift
            q = ((q + 2147483648) & 4294967295) - 2147483648
            uu = ((p + ((p >> 63) & rnd)) >> dshift) + q
            uu = ((uu + 2147483648) & 4294967295) - 2147483648
            hi = uu > half
            lo = uu <= -half
            uu = uu - full if hi else uu
            uu = uu + full if lo else uu
            p = v[b, i] * per[1, i]
            raw = ((p + ((p >> 63) & rnd)) >> dshift) + uu + per[2, i]
            raw = ((raw + 2147483648) & 4294967295) - 2147483648
            vv = min(max(raw, -vlim), vlim)
            cw += hi | lo
            cc += vv != raw
            sp = vv > per[3, i]
            v[b, i] = 0 if sp else vv
            u[b, i] = uu
            s[i] = sp
        return cw, cc

    def _sum_body(s, wpad, npad, lanes, scratch, out):
        # out[b, :n_out] = the sum of the padded rows wpad[j*npad:][:n_out] of the inputs
        # j with s[b, j] != 0 (s: C-contiguous int8), summed in registers in scratch's
        # type (_vec_row_sums), then widened into out (int32 or int64)
        B, n_in = s.shape
        n_out = out.shape[1]
        for b in _nb.prange(B):
            idx = np.empty(n_in + 8, np.int64)  # only idx[:k] is read, after it is written
            acc = scratch[b]
            _vec_row_sums(s[b], n_in, idx, wpad, 0, npad, acc, 0, lanes)
            for i in range(np.uint64(n_out)):
                out[b, i] = acc[i]

    _sums = tuple(_jit(parallel=p)(_variant(_sum_body, p)) for p in (False, True))

    @_jit(inline="always")
    def _send_rows(buf, b, o, acc, ao, n, e):
        # buf[b, o + i] = _send(acc[ao + i], e) for i < n (unsigned o, ao, n), the
        # exponent's branch taken once outside the loop so that LLVM vectorises it
        # (inside, the loop ran scalar: ~60 ns of a ~250 ns sample-step)
        if e >= 0:
            for i in range(n):
                a = np.int64(acc[ao + i]) << e
                buf[b, o + i] = ((a + 2147483648) & 4294967295) - 2147483648
        else:
            f = -e
            for i in range(n):
                a = np.int64(acc[ao + i]) >> f
                buf[b, o + i] = ((a + 2147483648) & 4294967295) - 2147483648

    @_jit(inline="always")
    def _send(a, e):
        # what a Dense sends for the sum a: << e or floor >> -e, then Lava's int32 wrap
        # (a no-op where the bound keeps it inside int32)
        a = (a << e) if e >= 0 else (a >> (-e))
        return ((a + 2147483648) & 4294967295) - 2147483648

    def _chain_body(x, t0, t1, wpad, wpoff, npad, aoff, nin, nout, noff, exps, per, prm,
                    u, v, buf, rec_s, rec_v, rec_u, flags, counts, scratch):
        # steps t0..t1-1 of a chain Input -> (Dense -> LIF) x L, per sample:
        # buf[b] holds what each Dense delivers next step (concatenated over layers);
        # scratch[b] the sums (int16/int32/int64, as the weights' bound allows; layer l's
        # at aoff[l], padded to npad[l]).  Inner loops run over unsigned indices,
        # branch-free, vectorised over neurons; the row sums in SIMD registers.
        B = x.shape[0]
        L = nout.shape[0]
        N = u.shape[1]
        shift, half, dshift, lanes = prm[0], prm[1], prm[2], prm[3]
        f_s, f_v, f_u = flags[0] != 0, flags[1] != 0, flags[2] != 0
        rb = flags[3]  # step t is recorded at row t - rb
        for b in _nb.prange(B):
            s = np.zeros(N, np.int8)
            idx = np.zeros(nin.max() + 8, np.int64)
            acc = scratch[b]
            for t in range(t0, t1):
                if f_s:  # spikes go straight into the recording
                    s = rec_s[t - rb, b]
                for l in range(L):
                    o = noff[l]
                    end = noff[l + 1] if l + 1 < L else N  # padded to whole vectors
                    cw, cc = _lif_rows(u, v, buf, per, s, b, o, end, shift, half, dshift)
                    counts[0, l, b] += cw
                    counts[1, l, b] += cc
                if f_v:
                    rv = rec_v[t - rb, b]
                    for i in range(np.uint64(N)):
                        rv[i] = v[b, i]
                if f_u:
                    ru = rec_u[t - rb, b]
                    for i in range(np.uint64(N)):
                        ru[i] = u[b, i]
                for l in range(L):
                    o = np.uint64(noff[l])
                    n = np.uint64(nout[l])
                    src = x[b, t] if l == 0 else s[noff[l - 1]:noff[l - 1] + nin[l]]
                    ao = aoff[l]
                    _vec_row_sums(src, nin[l], idx, wpad, wpoff[l], npad[l], acc, ao, lanes)
                    _send_rows(buf, b, o, acc, np.uint64(ao), n, exps[l])

    # compiled with parallel=True only: run on one thread for "serial" (ChainRunner.run)
    _chain_kernel = _jit(parallel=True)(_variant(_chain_body, True))

    def _chunk_body(x, t0, t1, wpad, wpoff, npad, wfloat, woff, nin, nout, noff, exps, per,
                    prm, u, v, buf, rec_s, rec_v, rec_u, flags, counts, accs, C, ratio):
        # The chain of _chain_body for a batch cut into chunks of C samples: per step and
        # layer, the chunk's spikes go to a 0/1 matrix (float32/float64, as the exact
        # product needs); when they are few (nnz * vectors per row * ratio < C * n_in *
        # n_out) each sample adds the weight rows of its spiking inputs (in registers,
        # accs[c]), else one BLAS product (spikes @ W) gives the sums for the whole
        # chunk, exact because every partial sum is an integer below 2**24 (float32) or
        # 2**53 (float64).  Same integers either way; chunks run in parallel.
        B = x.shape[0]
        L = nout.shape[0]
        N = u.shape[1]
        shift, half, dshift, lanes = prm[0], prm[1], prm[2], prm[3]
        f_s, f_v, f_u = flags[0] != 0, flags[1] != 0, flags[2] != 0
        rb = flags[3]  # step t is recorded at row t - rb
        nch = (B + C - 1) // C
        maxin = nin.max()
        for c in _nb.prange(nch):
            b0 = c * C
            cb = min(B, b0 + C) - b0
            S = np.zeros((cb, N), np.int8)
            idx = np.zeros(maxin + 8, np.int64)
            acc = accs[c]
            for t in range(t0, t1):
                for r in range(cb):
                    b = b0 + r
                    s = rec_s[t - rb, b] if f_s else S[r]
                    for l in range(L):
                        o = noff[l]
                        end = noff[l + 1] if l + 1 < L else N
                        cw, cc = _lif_rows(u, v, buf, per, s, b, o, end, shift, half, dshift)
                        counts[0, l, b] += cw
                        counts[1, l, b] += cc
                    if f_v:
                        rv = rec_v[t - rb, b]
                        for i in range(np.uint64(N)):
                            rv[i] = v[b, i]
                    if f_u:
                        ru = rec_u[t - rb, b]
                        for i in range(np.uint64(N)):
                            ru[i] = u[b, i]
                for l in range(L):
                    ni = np.uint64(nin[l])
                    n = np.uint64(nout[l])
                    o = noff[l]
                    so = noff[l - 1] if l > 0 else 0
                    nnz = 0
                    for r in range(cb):
                        b = b0 + r
                        if l == 0:
                            src = x[b, t]
                        else:
                            s = rec_s[t - rb, b] if f_s else S[r]
                            src = s[so:so + nin[l]]
                        k = 0
                        for j in range(ni):
                            k += src[j] != 0
                        nnz += k
                    e = exps[l]
                    if nnz * (npad[l] // lanes) * ratio < cb * nin[l] * nout[l]:
                        for r in range(cb):
                            b = b0 + r
                            if l == 0:
                                src = x[b, t]
                            else:
                                s = rec_s[t - rb, b] if f_s else S[r]
                                src = s[so:so + nin[l]]
                            _vec_row_sums(src, nin[l], idx, wpad, wpoff[l], npad[l], acc, 0,
                                          lanes)
                            _send_rows(buf, b, np.uint64(o), acc, np.uint64(0), n, e)
                    else:
                        sm = np.empty((cb, nin[l]), wfloat.dtype)
                        for r in range(cb):
                            b = b0 + r
                            if l == 0:
                                src = x[b, t]
                            else:
                                s = rec_s[t - rb, b] if f_s else S[r]
                                src = s[so:so + nin[l]]
                            for j in range(ni):
                                sm[r, j] = src[j] != 0
                        w = wfloat[woff[l]:woff[l] + nin[l] * nout[l]].reshape((nin[l], nout[l]))
                        out = np.dot(sm, w)
                        for r in range(cb):
                            b = b0 + r
                            for i in range(n):
                                buf[b, o + i] = _send(np.int64(out[r, i]), e)

    _chunk_kernel = _jit(parallel=True)(_variant(_chunk_body, True))


def _row_layout(ws):
    """Layout of weight matrices ``ws`` (each integer ``(n_out, n_in)``) for the register
    row sums (:func:`_vec_row_sums`): ``(sum dtype, lanes, npad, rows, bound)``, bound
    the largest ``sum |w|`` of an output.

    The sums take the narrowest type no output's ``sum |w|`` can leave: int16 (32
    lanes per 512-bit vector) below ``2**15``, int32 below ``2**31``, else int64.  The
    adds wrap modulo ``2**bits``, so a sum whose final value fits is exact in any order.
    ``rows[k]`` is ``ws[k].T`` (one row per input) padded with zeros to ``npad[k]``
    outputs, whole vectors, in the narrowest type holding every weight (int8, int16,
    int32), no wider than the sums: the rows are sign-extended after each load, and a
    big layer's rows come from memory every step, so bytes count."""
    ws = [np.asarray(w, np.int64) for w in ws]
    bound = max((int(np.abs(w).sum(axis=1).max(initial=0)) for w in ws), default=0)
    sdt = np.int16 if bound < (1 << 15) else np.int32 if bound < (1 << 31) else np.int64
    wmax = max((int(np.abs(w).max(initial=0)) for w in ws), default=0)
    wdt = np.int8 if wmax < (1 << 7) else np.int16 if wmax < (1 << 15) else np.int32
    if np.dtype(wdt).itemsize > np.dtype(sdt).itemsize:  # (bound >= wmax)
        wdt = sdt
    lanes = VEC_BYTES // np.dtype(sdt).itemsize
    npad = np.array([-(-w.shape[0] // lanes) * lanes for w in ws], np.int64)
    rows = []
    for w, n in zip(ws, npad):
        r = np.zeros((w.shape[1], int(n)), wdt)
        r[:, :w.shape[0]] = w.T
        rows.append(r)
    return sdt, lanes, npad, rows, bound


class ChainRunner:
    """A whole chain ``Input -> (Dense -> LIF) x L`` run in one compiled loop per block of
    steps: no per-step Python or per-step thread fork/join.

    Built by :func:`neurohw.emulate.run` for networks of that shape (delay-free, binary
    Dense projections; LIF populations without Loihi 1 rules, limits, refractory
    periods or traces).  ``layers`` is a list of ``(w, exp, needs_wrap, params)`` per
    layer: the projection's effective integer weights ``(n_out, n_in)``, its exponent
    (applied to the sum: ``<< e`` or floor ``>> -e``), whether Lava's int32 wrap can
    act (unused: the loops always apply the wrap, a no-op where it cannot act), and the
    population's :class:`.steps.LIFParams`.  The integers are those of
    :func:`.steps.lif_step`, :func:`.steps.dense_accumulate`, :func:`.steps.apply_exp`
    and :func:`.steps.wrap32` in the engine's order (tests compare both engines).

    Layout: population ``l`` occupies neurons ``noff[l] .. noff[l] + nout[l]`` of the
    state and of the recording rows (``N`` wide), padded with idle neurons to a multiple
    of :attr:`LIF_PAD`.  The weight-row sums run in 512-bit SIMD registers
    (:func:`_vec_row_sums`) in int16, int32 or int64 as the largest ``sum |w|`` of an
    output allows (exact: the adds wrap modulo ``2**bits`` and the final sum fits).
    """

    BLOCK = 128
    #: each population's neurons are padded to a multiple of this many (8 int64 lanes)
    LIF_PAD = 8
    #: batches of at least this many samples run in chunks (one BLAS product per chunk,
    #: layer and step where spikes are dense; :data:`GEMM_RATIO` decides)
    CHUNK_MIN_BATCH = 32
    #: at most this many samples per chunk (the product's rows)
    CHUNK_MAX = 128
    #: a chunk's layer adds weight rows when ``nnz * (vectors per row) * GEMM_RATIO <
    #: chunk * n_in * n_out``, else runs the BLAS product (a row of ``n_out`` sums is
    #: ``ceil(n_out / lanes)`` 512-bit vectors, 32 lanes in int16, 16 in int32; fitted on
    #: a 1000-1000-100 net, where the product wins from ~80 % active inputs, 2-core x86
    #: VM: docs/performance.md)
    GEMM_RATIO = 20
    #: the loop a run starts in when it is too short to time both (engine._LoopProbe):
    #: the per-sample loop, the faster one on the bench net at every input rate
    PREFER_CHUNKS = False

    def __init__(self, layers, batch: int, threads: "Threads" = None):
        nout = np.array([w.shape[0] for w, _, _, _ in layers], np.int64)
        nin = np.array([w.shape[1] for w, _, _, _ in layers], np.int64)
        # Each population's neurons start at noff[l] of the state and the recording rows,
        # followed by idle neurons up to a multiple of LIF_PAD (u = v = 0, no input, never
        # spiking): the LIF loop then has no scalar remainder (~15 % of its time on the
        # 100-100-10 bench net).  Readers slice [noff[l], noff[l] + nout[l]).
        pad = -(-nout // self.LIF_PAD) * self.LIF_PAD
        self.noff = np.concatenate([[0], np.cumsum(pad)[:-1]]).astype(np.int64)
        sizes = nout * nin
        self.woff = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.nin, self.nout = nin, nout
        self.exps = np.array([int(e) for _, e, _, _ in layers], np.int64)
        N = int(pad.sum())
        self.N = N  #: neurons of the state and recording rows, idle ones included
        idle = 1 << 40  # an idle neuron's threshold: v stays 0
        self.per = np.concatenate([
            np.pad(np.stack([np.broadcast_to(np.asarray(x, np.int64), (n,))
                             for x in (p.decay_u, p.decay_v, p.bias, p.vth_scaled)]),
                   ((0, 0), (0, int(m - n))))
            for (_, _, _, p), n, m in zip(layers, nout, pad)], axis=1)
        for l, (n, m) in enumerate(zip(nout, pad)):
            self.per[3, int(self.noff[l] + n):int(self.noff[l] + m)] = idle
        self.per = np.ascontiguousarray(self.per)
        self.u = np.zeros((batch, N), np.int64)
        self.v = np.zeros((batch, N), np.int64)
        self.buf = np.zeros((batch, N), np.int64)
        sdt, self.lanes, self.npad, rows, bound = _row_layout([w for w, _, _, _ in layers])
        self.aoff = np.concatenate([[0], np.cumsum(self.npad)[:-1]]).astype(np.int64)
        self.wpoff = np.concatenate([[0], np.cumsum(nin * self.npad)[:-1]]).astype(np.int64)
        self.wpad = np.concatenate([r.reshape(-1) for r in rows])
        p0 = layers[0][3]
        self.prm = np.array([p0.act_shift, p0.half, p0.decay_bits, self.lanes], np.int64)
        self.scratch = np.zeros((batch, int(self.npad.sum())), sdt)
        #: the widest layer's row of sums, in 512-bit vectors
        self.max_vectors = int((self.npad // self.lanes).max(initial=0))
        self.counts = np.zeros((2, len(layers), batch), np.int64)
        self.threads = threads if threads is not None else _FixedThreads(batch)
        # batches: chunks of samples with a BLAS product per dense step (exact in float32
        # below 2**24, float64 below 2**53; beyond, per-sample row sums only)
        self.chunk = None
        fdt = np.float32 if bound < (1 << 24) else np.float64 if bound < (1 << 53) else None
        if batch >= self.CHUNK_MIN_BATCH and fdt is not None:
            n = max(1, getattr(self.threads, "n", 2))
            self.chunk = min(self.CHUNK_MAX, -(-batch // n))
            self.wfloat = np.concatenate([np.ascontiguousarray(w.T, dtype=fdt).reshape(-1)
                                          for w, _, _, _ in layers])
            self.accs = np.zeros((-(-batch // self.chunk), int(self.npad.max())),
                                 self.scratch.dtype)
        #: run the chunked loop (True) or one sample per thread (False); both keep the
        #: state in the same arrays, so a run may switch between blocks of steps
        self.use_chunks = self.chunk is not None and self.PREFER_CHUNKS

    def run(self, x: np.ndarray, t0: int, t1: int, rec_s, rec_v, rec_u,
            rec_base: int = 0) -> None:
        """Steps ``t0 .. t1-1`` on input ``x`` (int8 ``(B, T, n_in)``, C order); records
        step ``t`` into row ``t - rec_base`` of the ``(rows, B, N)`` arrays given (None:
        not recorded; ``rec_base = t0`` records a block into arrays of ``t1 - t0`` rows)."""
        if x.dtype != np.int8 or not x.flags.c_contiguous:  # spikes: any nonzero is one
            x = np.ascontiguousarray(x != 0, dtype=np.int8)
        dummy8 = np.zeros((1, 1, 1), np.int8)
        dummy32 = np.zeros((1, 1, 1), np.int32)
        flags = np.array([rec_s is not None, rec_v is not None, rec_u is not None, rec_base],
                         np.int64)
        # Always the kernel compiled with parallel=True: run on one thread it was 27-43 %
        # faster than the serial compilation of the same body (batch 256, input rate
        # 0.1 / 0.5: 4.3 -> 5.5 M and 3.1 -> 4.4 M sample-steps/s) and as fast for one
        # sample.  "Serial" (Threads.parallel False) is that kernel on one thread.
        if self.use_chunks:
            args = (x, t0, t1, self.wpad, self.wpoff, self.npad, self.wfloat, self.woff,
                    self.nin, self.nout, self.noff, self.exps, self.per, self.prm, self.u,
                    self.v, self.buf, dummy8 if rec_s is None else rec_s,
                    dummy32 if rec_v is None else rec_v, dummy32 if rec_u is None else rec_u,
                    flags, self.counts, self.accs, self.chunk, self.GEMM_RATIO)
            kernel = _chunk_kernel
        else:
            args = (x, t0, t1, self.wpad, self.wpoff, self.npad, self.aoff, self.nin,
                    self.nout, self.noff, self.exps, self.per, self.prm, self.u, self.v,
                    self.buf, dummy8 if rec_s is None else rec_s,
                    dummy32 if rec_v is None else rec_v, dummy32 if rec_u is None else rec_u,
                    flags, self.counts, self.scratch)
            kernel = _chain_kernel
        if self.threads.parallel:
            kernel(*args)
            return
        n = _nb.get_num_threads()
        _nb.set_num_threads(1)
        try:
            kernel(*args)
        finally:
            _nb.set_num_threads(n)


class SpikeSum:
    """``a[b] = sum of the rows wt[j] with s[b, j] != 0``: a Dense over binary spikes.

    ``wt`` is the effective weight matrix transposed, integer ``(n_in, n_out)``;
    calling with 0/1 spikes ``s`` ``(B, n_in)`` (bool or int8, any strides)
    returns the sums ``(B, n_out)``, exact (plain integer sums), in work
    proportional to the number of spikes, as a chip does.  With ``small``
    (the caller has proven ``sum |w| < 2**31`` per row) the sums are int32,
    else int64.  The returned array is this object's buffer, overwritten by
    the next call.  The rows are added in SIMD registers (``_vec_row_sums``) in
    int16 where every output's ``sum |w| < 2**15`` (exact: the adds wrap modulo
    ``2**16`` and the final sum fits), else int32 / int64.
    """

    def __init__(self, wt: np.ndarray, batch: int, small: bool, threads: "Threads" = None):
        wt = np.asarray(wt)
        sdt, self.lanes, npad, rows, _ = _row_layout([wt.T])
        self.npad = int(npad[0])
        self.wpad = rows[0].reshape(-1)
        self.scratch = np.empty((batch, self.npad), sdt)
        self.out = np.empty((batch, wt.shape[1]), np.int32 if small else np.int64)
        self.threads = threads if threads is not None else _FixedThreads(batch)

    def __call__(self, s: np.ndarray) -> np.ndarray:
        if s.dtype == np.bool_ and s.flags.c_contiguous:
            s = s.view(np.int8)
        elif s.dtype != np.int8 or not s.flags.c_contiguous:
            s = np.ascontiguousarray(s != 0, dtype=np.int8)
        out = self.out[:s.shape[0]]
        _sums[self.threads.parallel](s, self.wpad, self.npad, self.lanes, self.scratch, out)
        return out


def prefer_spike_sum(nnz: int, batch: int, n_in: int, n_out: int) -> bool:
    """Cost model in ns, fitted on a 2-core x86 VM (docs/performance.md): the register
    row sums (:class:`SpikeSum`) cost ~0.1 ns per input listed, ~3 ns per spike and
    ~0.04 ns per added weight (0.013-0.075 measured, the high end where the rows come
    from memory); a float32 BLAS product ~0.03 ns per multiply-add, ~0.05 ns per
    converted element and ~2 us per call."""
    sparse = 0.1 * batch * n_in + nnz * (3.0 + 0.04 * n_out)
    blas = 0.03 * batch * n_in * n_out + 0.05 * batch * (n_in + n_out) + 2000.0
    return sparse < blas


class LIFStepper:
    """The fused LIF step of one population, bound to its state arrays.

    ``u``, ``v`` are int64 ``(B, n)`` and updated in place; ``spikes`` (bool
    ``(B, n)``) receives each step's spikes; ``counts[0]``/``counts[1]`` (int64
    ``(B,)`` each) grow by the neurons whose ``u`` wrapped at 24 bits / whose ``v``
    saturated.  ``p`` is a :class:`.steps.LIFParams` (scalars or per-neuron arrays;
    when du, dv and vth are all scalars a kernel holding them in registers runs).
    Calling it with the summed synaptic input ``a`` (int64 or int32 ``(B, n)``,
    C-contiguous; widened to int64 inside before any shift) runs one step.
    When ``p.extended`` (Loihi 1 rules, ``[vmin, vmax]`` or refractory delays,
    ``steps._lif_step_ext``) a third kernel runs; ``ref`` is then the refractory
    counter (int64 ``(B, n)``, updated in place) when ``p.refract`` is set.
    """

    def __init__(self, p, u: np.ndarray, v: np.ndarray, ref=None, threads: "Threads" = None):
        B, n = u.shape
        self.u, self.v = u, v
        self.threads = threads if threads is not None else _FixedThreads(B)
        self.ref = None
        shared = [p.decay_u, p.decay_v, p.vth_scaled]
        if p.extended:
            half = int(p.half)
            has_ref = p.refract is not None
            if has_ref and ref is None:
                raise ValueError("LIFStepper: refractory parameters need a ref counter array")
            self.ref = ref if has_ref else np.zeros((1, 1), np.int64)
            self.prm = np.array([p.act_shift, half, p.decay_bits,
                                 -(half - 1) if p.vmin is None else p.vmin,
                                 half - 1 if p.vmax is None else p.vmax,
                                 int(bool(p.loihi1)), p.dendrite_bits, int(has_ref),
                                 (2 * half).bit_length() - 1], np.int64)
            lut = getattr(p, "elif_lut", None)
            lut = np.zeros(0, np.int64) if lut is None else np.asarray(lut, np.int64)
            self.prm = np.concatenate([self.prm, np.array(
                [lut.size, getattr(p, "elif_lo", 0), getattr(p, "elif_shift", 0)], np.int64), lut])
            refract = p.refract if has_ref else 0
            self.per = np.ascontiguousarray(np.stack(
                [np.broadcast_to(np.asarray(x, dtype=np.int64), (n,))
                 for x in (p.decay_u, p.decay_v, p.bias, p.vth_scaled, refract)]))
            self._kernels = _kernels_ext
        elif all(np.ndim(x) == 0 for x in shared):
            # du, dv, vth shared: kept in registers (about 10 % faster on large populations)
            self.prm = np.array([p.act_shift, p.half, p.decay_bits] + [int(x) for x in shared],
                                np.int64)
            self.per = np.ascontiguousarray(np.broadcast_to(p.bias, (n,)), dtype=np.int64)
            self._kernels = _kernels_uniform
        else:
            self.prm = np.array([p.act_shift, p.half, p.decay_bits], np.int64)
            # per-neuron table (4, n): decay_u, decay_v, bias, vth_scaled (scalars broadcast)
            self.per = np.ascontiguousarray(np.stack(
                [np.broadcast_to(np.asarray(x, dtype=np.int64), (n,))
                 for x in (p.decay_u, p.decay_v, p.bias, p.vth_scaled)]))
            self._kernels = _kernels
        self.spikes = np.zeros((B, n), bool)
        self.counts = np.zeros((2, B), np.int64)

    def __call__(self, a: np.ndarray) -> np.ndarray:
        if not (a.flags.c_contiguous and a.dtype in (np.int64, np.int32)):
            a = np.ascontiguousarray(a, dtype=np.int64)
        kernel = self._kernels[self.threads.parallel]
        if self.ref is None:
            kernel(self.u, self.v, a, self.prm, self.per, self.spikes, self.counts)
        else:
            kernel(self.u, self.v, self.ref, a, self.prm, self.per, self.spikes, self.counts)
        return self.spikes


def usable_cores() -> int:
    """CPUs this process may run on: its affinity mask (``os.sched_getaffinity``), else
    ``os.cpu_count()``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _others_running() -> int:
    """Runnable tasks besides the reader right now: the 4th field of ``/proc/loadavg``
    (``running/total``) minus one, the least of three reads (0 where it is missing)."""
    least = None
    for _ in range(3):
        try:
            with open("/proc/loadavg") as f:
                r = int(f.read().split()[3].split("/")[0]) - 1
        except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
            return 0
        least = r if least is None else min(least, r)
    return max(0, least)


def free_cores() -> int:
    """Usable cores not busy with other runnable tasks at this moment (at least 1)."""
    return max(1, usable_cores() - _others_running())


class _FixedThreads:
    """Serial kernels below :data:`PARALLEL_MIN_BATCH` samples, parallel from there
    (the behaviour of a kernel object made without a :class:`Threads`)."""

    def __init__(self, batch: int):
        self.parallel = batch >= PARALLEL_MIN_BATCH


class Threads:
    """Whether one emulator run's kernels run serial or parallel, decided by measurement.

    Fewer than :data:`PARALLEL_MIN_BATCH` samples always run serial (threads cost more
    than they save).  Larger batches may use ``n`` threads: the least of the usable
    cores, ``batch // 8`` and numba's thread count (``threads`` caps it further).  The
    run starts parallel when at least 2 cores are free (:func:`free_cores`), and then,
    every :attr:`PERIOD` steps, times :attr:`WINDOW` steps parallel and ``WINDOW``
    steps serial and keeps the faster (the very first pair, which loads both kernels,
    is not timed); a pair that would switch modes is confirmed by a second pair at
    once, and the mode switches only when both agree.  So a process that takes a core
    mid-run turns the threads off at the next probes, and they come back when it ends;
    a wrong choice costs at most one period.  "Serial" chain loops run their parallel
    compilation on one thread (:meth:`ChainRunner.run`).  :meth:`tick` is called at the start of every step; :attr:`parallel` is
    read by the kernels.  As a context manager it sets numba's thread count to ``n``
    and holds BLAS to one thread (threadpoolctl) for the run, restoring both after.
    """

    WINDOW = 32
    PERIOD = 2048
    #: steps to the next probe after choosing serial: a serial choice can be transient
    #: (right after another program's burst, the scheduler left both threads on one
    #: core for ~0.1 s while the other idled: the first run after Lava's ran at the
    #: serial speed, 4.6 M against 10.4 M sample-steps/s), so it is re-checked sooner
    SERIAL_PERIOD = 256

    def __init__(self, batch: int, steps: int, threads: int = None):
        n = 1
        if _nb is not None and batch >= PARALLEL_MIN_BATCH:
            n = min(usable_cores(), batch // 8, _nb.config.NUMBA_NUM_THREADS)
        if threads is not None:
            n = max(1, min(n, int(threads)))
        self.n = n
        self.parallel = n >= 2 and free_cores() >= 2
        self.adaptive = n >= 2 and steps >= 6 * self.WINDOW
        self._next, self._stage, self._warm, self._t0, self._dp = 0, 0, True, 0.0, 0.0
        self._mode, self._confirm = self.parallel, False  # the mode between probes
        self.probes = []  # (step, seconds parallel, seconds serial) of each timed probe
        self._limits = None
        self._saved_n = None
        #: False leaves BLAS its own threads for the run (set by the engine when the
        #: kernels run serial and big conv products dominate: docs/performance.md)
        self.limit_blas = True

    def tick(self, t: int) -> None:
        """Step ``t`` starts: switch modes where a probe window begins or ends."""
        if not self.adaptive or t < self._next:
            return
        now = time.perf_counter()
        if self._stage == 0:  # time WINDOW steps parallel
            self.parallel, self._t0, self._stage = True, now, 1
            self._next = t + self.WINDOW
        elif self._stage == 1:  # then WINDOW steps serial
            self._dp, self.parallel, self._t0, self._stage = now - self._t0, False, now, 2
            self._next = t + self.WINDOW
        else:
            ds = now - self._t0
            self._stage = 0
            if self._warm:  # both kernels are loaded now: measure again at once
                self._warm, self._next = False, t
                self.tick(t)
                return
            self.probes.append((t, self._dp, ds))
            choice = self._dp < ds
            if choice != self._mode and not self._confirm:
                # a switch must be confirmed by a second pair at once: one 32-step window
                # is noisy (a first touch of the recording's pages, a scheduler tick), and
                # a wrong choice would hold for a whole period (a batch run fell from
                # 9.3M to 1.9M sample-steps/s on one such probe)
                self._confirm, self.parallel, self._next = True, self._mode, t
                self.tick(t)
                return
            self._confirm = False
            self._mode = self.parallel = choice
            self._next = t + (self.PERIOD if choice else self.SERIAL_PERIOD)

    def loaded(self) -> None:
        """Both kernels are already loaded (the caller ran each once): the first probe
        pair is timed instead of spent on loading them."""
        self._warm = False

    def block_end(self, t: int, block: int) -> int:
        """The end of a block of steps starting at ``t`` of at most ``block`` steps that
        stops where the next probe window begins or ends (for callers that tick once
        per block, so a probe times WINDOW steps, not a whole block)."""
        if self.adaptive and self._next > t:
            return min(t + block, self._next)
        return t + block

    @property
    def parallel_share(self) -> float:
        """Fraction of the timed probes that chose the parallel kernels (nan without)."""
        if not self.probes:
            return float("nan")
        return sum(dp < ds for _, dp, ds in self.probes) / len(self.probes)

    def __enter__(self) -> "Threads":
        if _nb is not None and self.n >= 2:
            self._saved_n = _nb.get_num_threads()
            _nb.set_num_threads(self.n)
        if not self.limit_blas:
            return self
        # the per-step BLAS products are small; BLAS's own spinning threads beside
        # numba's (or another process) made runs several times slower
        self._limits = _blas_limit_one()
        return self

    def __exit__(self, *exc) -> None:
        if self._limits is not None:
            self._limits.restore_original_limits()
            self._limits = None
        if self._saved_n is not None:
            _nb.set_num_threads(self._saved_n)
            self._saved_n = None


_controller = [None, -1]  # threadpoolctl.ThreadpoolController, len(sys.modules) when made


def _blas_limit_one():
    """BLAS limited to one thread (threadpoolctl's limiter, with
    ``restore_original_limits()``), or None without threadpoolctl.

    Finding the BLAS libraries reads ``/proc/self/maps`` (~1 ms, more than a short
    single-sample run takes), so the controller is kept and made again only when
    modules were imported since (a new extension may have brought a BLAS)."""
    import sys

    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return None
    if _controller[0] is None or _controller[1] != len(sys.modules):
        _controller[0], _controller[1] = ThreadpoolController(), len(sys.modules)
    return _controller[0].limit(limits=1, user_api="blas")


def blas_single_thread(batch: int):
    """A context manager limiting BLAS to one thread while the parallel kernels run
    (threadpoolctl, when installed); a no-op for small batches or without it."""
    import contextlib

    if batch < PARALLEL_MIN_BATCH:
        return contextlib.nullcontext()
    lim = _blas_limit_one()
    return contextlib.nullcontext() if lim is None else lim
