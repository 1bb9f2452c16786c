"""Implementations of the PAD convolution, each a :class:`.base.PADImpl`.

* :mod:`.reference`: one conv per dilation (the ground truth);
* :mod:`.im2col`: mixed im2col + one GEMM (soft, any device);
* :mod:`.hard_im2col` (with :mod:`.taps` and the compiled helpers of
  :mod:`.native`): hard inference computing only the chosen dilation;
* :mod:`.export_hard`: hard inference for recorded graphs (ONNX,
  ``torch.jit.trace``, ``torch.export``);
* :mod:`.triton_pad` (kernels in :mod:`.triton_kernels`): fused Triton
  kernels for CUDA.

They are registered with the dispatcher by :mod:`pad_mm.ops.functional`.
"""
