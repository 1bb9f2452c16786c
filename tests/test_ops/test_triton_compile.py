"""Every Triton kernel variant the dispatcher can launch compiles for real
GPU targets (sm_80, sm_90), without a GPU.

``TRITON_INTERPRET=1`` runs the kernels as Python and cannot see compile
errors (e.g. a runtime int used as a ``tl.static_range`` bound), so here
each variant listed by ``launch_variants()`` (every compute dtype: fp32
with TF32 on and off, fp16, bf16; soft and hard, the straight-through
probabilities taking the soft kernels; stride 1 and 2) is compiled:

* with each target's tiles (``launch_variants(cap=...)``), through
  Triton's front end and its GPU-specific passes (TTIR -> TTGIR) for both
  targets, every variant not compiled to a cubin (and the k = 5, D = 4
  variants in bf16 for sm_90);
* and to a cubin with ``triton.compile(ASTSource(...),
  target=GPUTarget('cuda', cap, 32))`` (Triton's own LLVM and its bundled
  ``ptxas``) for both targets and each kernel in the AMP (bf16) and the
  default fp32 (TF32) modes (a full compile of every variant for both
  targets takes minutes on two cores).

Skips only when ``triton`` is not importable.
"""
import pytest

triton = pytest.importorskip('triton')

from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from pad_mm.ops import triton_pad  # noqa: E402

CAPS = (80, 90)
VARIANTS = {v.name: v for v in triton_pad.launch_variants()}
# each target with its own tiles (sm_8x: smaller ones for two kernels)
BY_CAP = {cap: {v.name: v for v in triton_pad.launch_variants(cap=cap)}
          for cap in CAPS}
# D = 4 and a 5x5 kernel (other launches' constexprs) for the front end
EXTRA = {f'k5-d4/{v.name}': v
         for v in triton_pad.launch_variants(k=5, num_dilations=4)}


def _source(v):
    return ASTSource(fn=v.fn, signature=v.signature, constexprs=v.constexprs)


def _to_ttgir(v, cap):
    """Front end + TTIR + TTGIR passes for ``cap`` (no LLVM, no ptxas);
    falls back to a full ``triton.compile`` if this Triton's internals
    differ."""
    target = GPUTarget('cuda', cap, 32)
    src = _source(v)
    try:
        from triton._C.libtriton import ir
        from triton.compiler.compiler import make_backend
        backend = make_backend(target)
        options = backend.parse_options({})
        stages = {}
        backend.add_stages(stages, options, src.language)
        context = ir.context()
        ir.load_dialects(context)
        backend.load_dialects(context)
        make_ir = (lambda: src.make_ir(target, options,
                                       backend.get_codegen_implementation(
                                           options),
                                       backend.get_module_map(), context))
    except (ImportError, AttributeError, TypeError):
        return triton.compile(src, target=target).asm['ttgir']
    module = make_ir()
    metadata = {}
    for ext in ('ttir', 'ttgir'):
        module = stages[ext](module, metadata)
    return str(module)


def test_variants_cover_every_launch_mode():
    names = set(VARIANTS)
    assert len(names) == len(triton_pad.launch_variants())  # unique
    for tag in ('fp32-ieee', 'fp32-tf32', 'fp16', 'bf16'):
        for s in (1, 2):
            for mode in ('soft', 'hard'):
                assert f'fwd-{tag}-s{s}-{mode}' in names
            assert f'bwd_weight-{tag}-s{s}' in names
            assert f'bwd_input_gemm-{tag}-s{s}' in names
        assert f'bwd_cols-{tag}' in names
    for dt in ('fp32', 'fp16', 'bf16'):
        for s in (1, 2):
            assert {f'bwd_input-{dt}-s{s}', f'bwd_probs-{dt}-s{s}'} <= names
            if dt != 'fp32':  # grad_weight in a half weight's dtype
                v = VARIANTS[f'bwd_weight-{dt}-s{s}-w{dt}']
                assert v.signature['gw_ptr'] == f'*{dt}'
                assert VARIANTS[f'bwd_weight-{dt}-s{s}'].signature[
                    'gw_ptr'] == '*fp32'
    # the sm_8x tiles
    assert BY_CAP[80]['fwd-bf16-s1-soft'].constexprs['BN'] == 64
    assert BY_CAP[90]['fwd-bf16-s1-soft'].constexprs['BN'] == 128
    assert BY_CAP[80]['bwd_input_gemm-bf16-s1'].constexprs['BN'] == 64
    v = VARIANTS['fwd-bf16-s2-hard']
    assert v.constexprs['HARD'] is True and v.constexprs['CAST'] is True
    assert v.signature['x_ptr'] == '*bf16'
    assert v.signature['p_ptr'] == '*i64'
    assert v.signature['STRIDE'] == 'constexpr'
    assert VARIANTS['fwd-fp32-tf32-s1-soft'].constexprs['PREC'] == 'tf32'


# to a cubin: every kernel in the AMP (bf16) and default fp32 (TF32) modes
# at stride 2 (the stride only enters the index arithmetic), both targets
_CUBIN = sorted(
    name for name in VARIANTS
    if ('-bf16' in name or 'fp32-tf32' in name or name in (
        'bwd_input-fp32-s1', 'bwd_probs-fp32-s1')) and '-s1' not in name
    or name in ('bwd_input-fp32-s1', 'bwd_probs-fp32-s1'))


# through the front end and the GPU passes: every variant not compiled to
# a cubin (above), for both targets; the k = 5, D = 4 variants (other
# constexprs, the same code per dtype) in bf16 for sm_90. One case per
# variant, so that the workers share them.
_LOWER = [(name, cap) for cap in CAPS for name in sorted(VARIANTS)
          if name not in _CUBIN] + [
              (name, 90) for name in sorted(EXTRA) if '-bf16' in name]


@pytest.mark.parametrize('name,cap', _LOWER)
def test_every_variant_lowers_for_the_gpu(name, cap):
    ttgir = _to_ttgir({**BY_CAP[cap], **EXTRA}[name], cap)
    assert 'tt.func' in ttgir, name


@pytest.mark.parametrize('cap', CAPS)
@pytest.mark.parametrize('name', _CUBIN)
def test_compiles_to_cubin(name, cap):
    kernel = triton.compile(_source(BY_CAP[cap][name]),
                            target=GPUTarget('cuda', cap, 32))
    assert kernel.asm['cubin'][:4] == b'\x7fELF'  # a real sm_xx binary
    assert f'.target sm_{cap}' in kernel.asm['ptx']
    assert kernel.metadata.shared <= 227 * 1024  # fits an H100/A100 SM
