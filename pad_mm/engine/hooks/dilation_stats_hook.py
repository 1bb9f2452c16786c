"""Log the dilation statistics of every validation / test."""
from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.logging import print_log

from pad_mm.registry import FUNCTIONS, HOOKS, METRICS

__all__ = ['PADDilationStatsHook']


def _step(runner) -> int:
    loop = runner._train_loop
    return 0 if loop is None or isinstance(loop, dict) else runner.iter


@HOOKS.register_module()
class PADDilationStatsHook(Hook):
    """Bind the model's PAD layers to the ``PADDilationMetric`` of the
    val / test evaluator and draw the dilation histogram after each
    validation / test.

    The metric's scalars (per-layer mean and variance sigma^2(d) of the
    sampled dilation, fraction of pixels per chosen dilation) are logged
    by ``LoggerHook`` like any metric: to the log and to every visualizer
    backend (``LocalVisBackend``: ``vis_data/scalars.json``,
    ``TensorboardVisBackend``: TensorBoard scalars). This hook adds the
    histogram picture ``pad_dilation_histogram`` to the backends.

    While training, every ``train_interval`` iterations it also records
    what the layers actually sampled in that iteration's forward pass and
    logs, pooled over all PAD layers, ``pad/train_p_max`` (mean max
    softmax(h): the share of training samples that follow the prior),
    ``pad/train_off_argmax`` (share of pixels whose training sample
    differs from the hard-eval choice) and ``pad/train_var_dilation``
    (sigma^2(d)).

    Args:
        histogram: draw the histogram picture.
        add_metric: if the evaluator has no ``PADDilationMetric``, add one
            (with ``per_layer``); if False, a missing metric is an error.
        per_layer: ``per_layer`` of the added metric.
        train_interval: record the training statistics every this many
            iterations (an int >= 1), or None for never.
    """

    priority = 'NORMAL'

    def __init__(self,
                 histogram: bool = True,
                 add_metric: bool = True,
                 per_layer: bool = True,
                 train_interval: int | None = 50) -> None:
        for name, value in (('histogram', histogram),
                            ('add_metric', add_metric),
                            ('per_layer', per_layer)):
            if not isinstance(value, bool):
                raise TypeError(f'PADDilationStatsHook.{name} must be a '
                                f'bool, got {value!r}')
        if train_interval is not None and (
                isinstance(train_interval, bool)
                or not isinstance(train_interval, int) or train_interval < 1):
            raise ValueError(f'PADDilationStatsHook.train_interval must be '
                             f'an int >= 1 or None, got {train_interval!r}')
        self.histogram = histogram
        self.add_metric = add_metric
        self.per_layer = per_layer
        self.train_interval = train_interval
        self._train_recorder = None

    def _pad_metrics(self, evaluator) -> list:
        # pad_mm.evaluation.PADDilationMetric and
        # pad_mm.visualization.render_dilation_histogram are found by their
        # registered names: the engine layer does not import those above it
        metric_cls = METRICS.get('PADDilationMetric')
        metrics = [m for m in evaluator.metrics
                   if isinstance(m, metric_cls)]
        if not metrics:
            if not self.add_metric:
                raise ValueError(
                    'PADDilationStatsHook(add_metric=False) needs '
                    "dict(type='PADDilationMetric') in the evaluator")
            metric = metric_cls(per_layer=self.per_layer)
            evaluator.metrics.append(metric)
            print_log('PADDilationStatsHook: added PADDilationMetric to the '
                      'evaluator', logger='current')
            metrics = [metric]
        return metrics

    def _bind(self, runner, evaluator) -> None:
        for metric in self._pad_metrics(evaluator):
            metric.bind(runner.model)

    def _finish(self, runner, evaluator, tag: str) -> None:
        render_dilation_histogram = FUNCTIONS.get('pad_dilation_histogram')
        for i, metric in enumerate(self._pad_metrics(evaluator)):
            metric.unbind()
            if self.histogram and any(k != 'all'
                                      for k in metric.last_stats):
                step = _step(runner)
                image = render_dilation_histogram(
                    metric.last_stats, title=f'{tag} at iteration {step}')
                name = 'pad_dilation_histogram' + (f'_{i}' if i else '')
                runner.visualizer.add_image(name, image, step=step)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if self.train_interval is None or not self.every_n_train_iters(
                runner, self.train_interval):
            return
        # found by name: the engine layer does not import evaluation/
        recorder_cls = FUNCTIONS.get('pad_recorder')
        self._train_recorder = recorder_cls(runner.model).attach()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        recorder, self._train_recorder = self._train_recorder, None
        if recorder is None:
            return
        recorder.detach()
        stats = FUNCTIONS.get('pad_summarize_dilation_stats')(
            recorder.pop_sums()).get('all')
        if stats is None:
            return
        for key, value in (('p_max', stats['p_max']),
                           ('off_argmax', stats['off_argmax']),
                           ('var_dilation', stats['var'])):
            runner.message_hub.update_scalar(f'train/pad/train_{key}',
                                             value)

    def before_val_epoch(self, runner) -> None:
        self._bind(runner, runner.val_evaluator)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._finish(runner, runner.val_evaluator, 'val')

    def before_test_epoch(self, runner) -> None:
        self._bind(runner, runner.test_evaluator)

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._finish(runner, runner.test_evaluator, 'test')
