"""The static kernel report (pad_mm/ops/kernel_report.py): every launch of
a production-shaped PAD call compiled for sm_90 at its real
specialisation, without a GPU, and what issue 27 section 3 asks of it.

The weight tiles are loaded from the repacked weight with 128-bit loads
(no scalar 2-byte global load in any kernel) and the predicted fwd+bwd
ratio to the cuDNN roofline is about 1.47x (target 1.5x); both were strict
xfails before the kernels were reshaped (scalar weight loads, 3.1x). The
backward's GEMM path (no buffer) is predicted at 1.69x and within 1.3x
cuDNN's peak memory, the buffer path at 2.78x of it."""
import json

import pytest
import torch

triton = pytest.importorskip('triton')

from pad_mm.ops import kernel_report as kr  # noqa: E402
from pad_mm.ops import triton_pad  # noqa: E402
from pad_mm.ops.gpu_check.speed import SWEPT_KERNELS  # noqa: E402
from pad_mm.ops.impls.triton_tiles import (TILE_CANDIDATES,  # noqa: E402
                                             tile_override)
from pad_mm.ops.shapes import conv_out_size  # noqa: E402

SHAPE = kr.SHAPES['r101_layer4_os8_b2']


@pytest.fixture(scope='module')
def report():
    return kr.build_report({'r101_layer4_os8_b2': SHAPE})


def test_ptx_memory_ops_counts_widths():
    ptx = '''
        ld.global.b16 {%rs1}, [%rd1];
        @%p2 ld.global.L1::evict_last.v4.b32 {%r1,%r2,%r3,%r4}, [%rd2];
        ld.global.nc.v2.b32 {%r5,%r6}, [%rd3];
        st.global.v4.b32 [%rd4], {%r1,%r2,%r3,%r4};
        st.global.b16 [%rd5], %rs1;
        ld.shared.v4.b32 {%r1,%r2,%r3,%r4}, [%r9];
    '''
    assert kr.ptx_memory_ops(ptx) == {'ld': {16: 1, 64: 1, 128: 1},
                                      'st': {16: 1, 128: 1}}


def test_ptx_memory_ops_counts_async_copies_as_loads():
    ptx = '''
        cp.async.cg.shared.global [ %r1952 + 0 ], [ %rd94 + 0 ], 0x10, %r160;
        cp.async.ca.shared.global [%r1], [%rd2], 4;
        cp.async.ca.shared.global [%r1], [%rd2], 8, %r3;
        cp.async.commit_group;
        cp.async.wait_group 2;
        st.global.b32 [%rd5], %r1;
    '''
    assert kr.ptx_memory_ops(ptx) == {'ld': {32: 1, 64: 1, 128: 1},
                                      'st': {32: 1}}


def test_launches_are_recorded_with_the_real_arguments():
    launches = kr.shape_launches(SHAPE)
    names = [launch.kernel.fn.__name__ for launch in launches['soft']]
    assert names[0] == 'fwd_kernel' and names[-1] == 'bwd_weight_kernel'
    # the backward runs one image per chunk at this size (72 MiB bf16
    # buffer per image, 128 MiB bound)
    assert names.count('bwd_cols_kernel') == SHAPE[0]
    n, c, co, h, w, s, dil = SHAPE
    fwd = launches['soft'][0]
    assert fwd.args[7] == n * conv_out_size(h, 3, s) * conv_out_size(w, 3, s)
    assert fwd.meta['D'] == len(dil) and fwd.meta['CAST'] is True
    assert fwd.args[0].dtype == torch.bfloat16
    assert fwd.args[1].dtype == torch.bfloat16  # the fp32 weight, cast
    (hard, ) = launches['hard']
    assert hard.meta['HARD'] is True
    # the GEMM path: grad_input by one launch, no buffer; grad_probs'
    # partial sums for both images in one chunk
    gemm = [launch.kernel.fn.__name__ for launch in launches['soft/gemm']]
    assert 'bwd_input_kernel' not in gemm
    assert gemm.count('bwd_input_gemm_kernel') == 1
    assert gemm.count('bwd_cols_kernel') == 1
    (cols, ) = [la for la in launches['soft/gemm']
                if la.kernel.fn.__name__ == 'bwd_cols_kernel']
    assert cols.meta['COLS'] is False and cols.meta['PROBS'] is True
    assert cols.args[4].numel() == 0  # no buffer


def test_specialisation_follows_triton():
    fwd = kr.shape_launches(SHAPE)['soft'][0]
    src = kr.specialise(fwd)
    names = fwd.kernel.arg_names
    # channels_last: the channel stride of x is 1, a constant
    sxc = names.index('sxc')
    assert fwd.args[sxc] == 1 and src.signature['sxc'] == 'constexpr'
    assert src.constants[(sxc, )] == 1
    # 16-divisible sizes and aligned pointers carry the hint
    for arg in ('x_ptr', 'w_ptr', 'out_ptr', 'CG', 'COG', 'NP'):
        assert (names.index(arg), ) in src.attrs, arg
    assert src.signature['x_ptr'] == '*bf16'


def test_every_kernel_compiles_for_sm90_without_spills(report):
    (shape, ) = report['shapes'].values()
    kernels = {(k['kernel'], k['family']) for k in shape['kernels']}
    assert kernels == {('fwd_kernel', 'soft'), ('bwd_cols_kernel', 'soft'),
                       ('bwd_input_kernel', 'soft'),
                       ('bwd_probs_kernel', 'soft'),
                       ('bwd_weight_kernel', 'soft'), ('fwd_kernel', 'hard'),
                       ('bwd_cols_kernel', 'soft/gemm'),
                       ('bwd_probs_kernel', 'soft/gemm'),
                       ('bwd_input_gemm_kernel', 'soft/gemm')}
    assert shape['auto_backward_path'] == 'buffer'
    for k in shape['kernels']:
        assert 0 < k['registers'] <= 255, k
        assert k['spill_stores'] == k['spill_loads'] == 0, k
        assert k['shared_bytes'] <= 227 * 1024, k
        assert sum(k['global_access_bits']['ld'].values()) > 0, k


def test_channels_last_activation_loads_are_vectorised(report):
    """bwd_input reads the bf16 buffer, bwd_probs fp32 partial sums,
    bwd_weight bf16 channels_last activations and bwd_input_gemm bf16
    channels_last grad_out: 128-bit loads, no scalar 2-byte one."""
    (shape, ) = report['shapes'].values()
    for k in shape['kernels']:
        if k['kernel'] in ('bwd_input_kernel', 'bwd_probs_kernel',
                           'bwd_weight_kernel', 'bwd_input_gemm_kernel'):
            assert 16 not in k['global_access_bits']['ld'], k
            assert k['global_access_bits']['ld'].get(128, 0) > 0, k


def test_no_scalar_two_byte_weight_loads(report):
    (shape, ) = report['shapes'].values()
    for k in shape['kernels']:
        assert 16 not in k['global_access_bits']['ld'], k


def test_roofline_arithmetic():
    r = kr.roofline(SHAPE)
    n, c, co, h, w, s, dil = SHAPE
    p = n * h * w
    assert r['cudnn']['fwd']['tensor_flops'] == 2 * p * co * c * 9
    assert r['cudnn']['bwd']['tensor_flops'] == 4 * p * co * c * 9
    # the [pixels, 9, C] buffer in bf16: bwd_cols writes it once (with x,
    # grad_out, the weight and grad_probs' partial sums), bwd_input reads
    # it once; bwd_probs only adds the partial sums (8 channel tiles of 64)
    buf = p * 9 * c * 2
    part = 8 * len(dil) * p * 4
    assert r['kernels']['bwd_cols']['hbm_bytes'] == (
        p * co * 2 + co * c * 9 * 2 + buf + n * h * w * c * 2 + part)
    assert r['kernels']['bwd_input']['hbm_bytes'] == (
        buf + len(dil) * p * 4 + p * 4 + n * h * w * c * 2)
    assert r['kernels']['bwd_probs']['hbm_bytes'] == part + len(dil) * p * 4
    us = r['cudnn']['fwd']['us']
    assert us == pytest.approx(max(
        2 * p * co * c * 9 / kr.H100['bf16_tensor_flops'],
        r['cudnn']['fwd']['hbm_bytes'] / kr.H100['hbm_bytes']) * 1e6)
    assert r['fwd_bwd_ratio'] == pytest.approx(
        r['pad_fwd_bwd_us'] / r['cudnn_fwd_bwd_us'])
    # hard inference as cuDNN + a torch fix-up of 10% of the pixels: a
    # tenth of the GEMM, the taps of those pixels moved three times
    fp = kr.HARD_SHARE * p
    fix = r['hard_fixup']
    assert fix['tensor_flops'] == pytest.approx(0.1 * 2 * p * co * c * 9)
    assert fix['hbm_bytes'] == pytest.approx(
        2 * p * 8 + 3 * fp * 9 * c * 2 + co * c * 9 * 2 + 3 * fp * co * 2)
    assert r['hard_fixup_ratio'] == pytest.approx(1 + fix['us'] / us)
    # on these shapes its bytes, not its FLOPs, bound it, past the 1.1x
    # target: why the dense hard kernel, not this design, is the CUDA path
    assert fix['us'] > 0.1 * us and r['hard_fixup_ratio'] > 1.1


def test_gemm_path_roofline():
    """grad_input by the GEMM path: no buffer through HBM, one more GEMM
    and the mixing of grad_out redone per input-channel tile."""
    r = kr.roofline(SHAPE)
    n, c, co, h, w, s, dil = SHAPE
    p, d = n * h * w, len(dil)
    g = r['gemm_path']
    part = 8 * d * p * 4
    assert g['bwd_cols']['hbm_bytes'] == (p * co * 2 + co * c * 9 * 2 +
                                          p * c * 2 + part)
    gi = g['bwd_input_gemm']
    assert gi['tensor_flops'] == 2 * p * co * c * 9
    tiles = -(-c // kr.BLOCKS['input_gemm']['BN'])
    assert gi['cuda_core_flops'] == 2 * p * co * (8 * d + 1) * tiles
    assert gi['hbm_bytes'] == (p * co * 2 + co * c * 9 * 2 + d * p * 4 +
                               p * 4 + p * c * 2)
    k = r['kernels']
    total = sum(k[n]['us'] for n in ('fwd (soft)', 'bwd repack',
                                     'bwd_probs', 'bwd_weight')) + \
        g['bwd_cols']['us'] + gi['us']
    assert r['gemm_path_fwd_bwd_ratio'] == pytest.approx(
        total / r['cudnn_fwd_bwd_us'])
    # slower than the buffer path in this model, by the mixing
    assert r['gemm_path_fwd_bwd_ratio'] > r['fwd_bwd_ratio']


def test_memory_model():
    """The layer's peak above its inputs: the buffer path holds one
    image's [pixels, 9, C] buffer (72 MiB in bf16 here), the GEMM path
    none; only the GEMM path is within 1.3x cuDNN's (issue 27)."""
    n, c, co, h, w, s, dil = SHAPE
    p, d = n * h * w, len(dil)
    m = kr.layer_memory(SHAPE, w_elt=4, p_elt=4)
    assert m['cudnn'] == p * co * 2 + p * c * 2 + co * c * 9 * 4
    buf, gemm = m['buffer'], m['gemm']
    assert buf['images_per_chunk'] == 1 and gemm['images_per_chunk'] == 2
    diff = buf['phases']['columns'] - gemm['phases']['columns']
    part = 8 * d * h * w * 4
    assert diff == h * w * 9 * c * 2 - part  # one image's buffer
    assert gemm['ratio_to_cudnn'] <= 1.3 < buf['ratio_to_cudnn']
    # a smaller bound: the buffer path still holds one image at least
    small = kr.layer_memory(SHAPE, w_elt=4, p_elt=4, bound=1)
    assert small['buffer']['peak_bytes'] == buf['peak_bytes']
    assert small['gemm']['images_per_chunk'] == 1


def test_every_kernel_compiles_for_sm80_without_spills():
    """sm_8x takes 64x64 tiles for the soft forward and the grad_input
    GEMM (the sm_90 tiles spilled there: 20/40 and 268/628 bytes)."""
    rep = kr.build_report({'r101_layer4_os8_b2': SHAPE}, cap=80)
    (shape, ) = rep['shapes'].values()
    assert rep['target'] == 'sm_80'
    fwd = [k for k in shape['kernels'] if k['kernel'] == 'fwd_kernel']
    assert all(k['grid'][1] == 512 // 64 for k in fwd)
    for k in shape['kernels']:
        assert k['spill_stores'] == k['spill_loads'] == 0, k
        assert 16 not in k['global_access_bits']['ld'], k


@pytest.mark.parametrize('kernel,index', [
    (k, i) for k, c in TILE_CANDIDATES.items() for i in range(1, len(c))])
def test_tile_candidates_compile_for_sm90_without_spills(kernel, index):
    """The tile sweep's other candidates (tiles and warps), compiled as
    launched at ResNet-101 layer4 (the defaults are in the report above)."""
    tiles = TILE_CANDIDATES[kernel][index]
    with tile_override(kernel, tiles), triton_pad.bwd_input_path(
            'gemm' if kernel == 'input_gemm' else 'auto'):
        launches = kr.shape_launches(SHAPE)['soft']
    (first, *_) = [la for la in launches
                   if la.kernel.fn.__name__ == SWEPT_KERNELS[kernel]]
    assert {k: first.meta[k] for k in tiles} == tiles
    k = kr.compile_launch(first, 90)
    assert k['num_warps'] == tiles.get('num_warps', 4)
    assert k['spill_stores'] == k['spill_loads'] == 0, k
    assert k['shared_bytes'] <= 227 * 1024, k
    assert 16 not in k['global_access_bits']['ld'], k


def test_predicted_fwd_bwd_within_target(report):
    (shape, ) = report['shapes'].values()
    assert shape['roofline']['fwd_bwd_ratio'] <= 1.5


def test_tool_writes_json_and_prints_the_table(repo_root, tmp_path, capsys):
    from helpers.tools import load_tool
    mod = load_tool(repo_root, 'analysis_tools/kernel_report.py')
    out = tmp_path / 'report.json'
    data = mod.main(['--shapes', 'r101_layer4_os16_b8', '--out', str(out)])
    assert json.loads(out.read_text())['shapes'].keys() == {
        'r101_layer4_os16_b8'}
    assert data['target'] == 'sm_90'
    table = capsys.readouterr().out
    assert '| r101_layer4_os16_b8 | fwd_kernel | soft |' in table
    assert '**fwd+bwd ratio to cuDNN**' in table
    with pytest.raises(SystemExit):
        mod.parse_args(['--shapes', 'nope'])
    assert '--shapes must name shapes' in capsys.readouterr().err


def test_docs_show_the_committed_report_of_this_model(repo_root):
    """docs/advanced/performance.md shows the committed report's tables,
    and its rooflines and memory figures are what the model gives now
    (a change to the kernels' model must regenerate the report)."""
    import os.path as osp
    import re
    doc = open(osp.join(repo_root, 'docs', 'advanced',
                        'performance.md')).read()
    (rel, ) = set(re.findall(
        r'--out (docs/performance/[\w.-]+/kernel_report\.json)', doc))
    data = json.load(open(osp.join(repo_root, rel)))
    assert kr.markdown_table(data) in doc
    assert set(data['shapes']) == set(kr.SHAPES)
    for name, s in data['shapes'].items():
        roof = kr.roofline(kr.SHAPES[name])
        assert s['roofline']['fwd_bwd_ratio'] == pytest.approx(
            roof['fwd_bwd_ratio'])
        assert s['roofline']['gemm_path_fwd_bwd_ratio'] == pytest.approx(
            roof['gemm_path_fwd_bwd_ratio'])
        assert s['roofline']['hard_ratio'] == pytest.approx(
            roof['hard_ratio'])
        mem = kr.layer_memory(kr.SHAPES[name], w_elt=4, p_elt=4)
        for path in ('buffer', 'gemm'):
            assert s['memory'][path]['peak_bytes'] == mem[path]['peak_bytes']
