"""Workarounds ``atomic-checkpoints`` and ``verified-resume``: crash-safe
checkpoints for mmengine 0.10.7 (atomic saves, ``max_keep_ckpts`` that
deletes only after the new checkpoint is complete, and a resume that
checks what it loads). The file-level pieces are in
:mod:`pad_mm.runtime.checkpoint_io`.

Upstream behaviour worked around (mmengine 0.10.7):

1. ``mmengine.runner.checkpoint.save_checkpoint`` serialises with
   ``torch.save`` and ``LocalBackend.put`` then opens the final path with
   ``open(filepath, 'wb')`` and writes in place, without fsync. A job killed
   (or a disk that fills up) during the write leaves a truncated
   ``iter_N.pth``.
2. ``CheckpointHook._save_checkpoint_with_step`` deletes the oldest kept
   checkpoint *before* writing the new one (``max_keep_ckpts``), and writes
   ``last_checkpoint`` in place with ``open(..., 'w')``.
3. ``Runner.load_or_resume`` resumes from whatever ``last_checkpoint``
   names; a torn file fails deep inside ``torch.load`` with
   ``PytorchStreamReader failed reading zip archive: failed finding central
   directory`` (reported for OpenMMLab resumes in
   https://github.com/open-mmlab/mmdetection/issues/4835; no mmengine issue
   about it was found), and the user has to pick an older file by hand.

What :func:`apply_atomic_save` and :func:`apply_verified_resume` change
(applied by :func:`pad_mm.runtime.apply_workarounds`, which ``import
pad_mm.seg`` / ``pad_mm.cls`` run, so a config's ``custom_imports`` gives
them to mmseg's and mmpretrain's own ``tools/train.py`` too):

* every local checkpoint is written to a temporary file in the same
  directory (``.iter_N.pth.XXXXXXXX.tmp``), flushed, fsynced, moved into
  place with ``os.replace`` (the directory is fsynced too); its sha256 is
  recorded beside it in ``iter_N.pth.sha256`` (``sha256sum -c`` format),
  written the same way. ``last_checkpoint`` is replaced the same way, only
  after the checkpoint is in place. In distributed runs rank 0 writes (as
  upstream). A failed write (e.g. ``ENOSPC``) removes the temporary file,
  leaves the previous checkpoint and ``last_checkpoint`` untouched and
  raises :class:`~pad_mm.runtime.checkpoint_io.CheckpointWriteError` with one clear line.
* ``max_keep_ckpts`` deletes the oldest checkpoint only after the new one
  and ``last_checkpoint`` are complete on disk.
* resuming verifies the checkpoint first (:func:`~pad_mm.runtime.checkpoint_io.verify_checkpoint`): it
  opens, holds ``meta`` (with ``epoch``/``iter``), ``state_dict``,
  ``optimizer`` and ``message_hub``, its tensors fit the model's shapes and
  its recorded sha256 matches. Auto-resume (``resume=True`` without
  ``load_from``) takes the checkpoint ``last_checkpoint`` names, else the
  newest valid ``iter_N.pth`` / ``epoch_N.pth`` of the work dir, logging
  one line per unusable file; if none is valid it raises
  :class:`CheckpointError` listing what it tried. An explicit checkpoint
  (``--resume PATH``) that is not valid raises :class:`CheckpointError`
  with the reason. Rank 0 decides and broadcasts the decision, so all
  ranks resume from the same file.
"""
from __future__ import annotations

import os
import os.path as osp

from .checkpoint_io import (CHECKSUM_SUFFIX, REQUIRED_KEYS,  # noqa: F401
                            CheckpointError, CheckpointWriteError,
                            atomic_write, atomic_write_text, checksum_path,
                            decide_on_rank0, model_shapes,
                            read_last_checkpoint, remove_unfinished_writes,
                            resume_candidates, save_checkpoint_atomic,
                            select_resume_checkpoint, verify_checkpoint,
                            write_error)

__all__ = [
    'apply_atomic_save', 'apply_verified_resume', 'apply_checkpoint_patches',
    'CheckpointError', 'CheckpointWriteError', 'atomic_write',
    'atomic_write_text', 'save_checkpoint_atomic', 'verify_checkpoint',
    'resume_candidates', 'select_resume_checkpoint',
    'remove_unfinished_writes', 'CHECKSUM_SUFFIX', 'REQUIRED_KEYS'
]

def _is_local(filename: str, file_client_args, backend_args) -> bool:
    from mmengine.fileio import FileClient, LocalBackend, get_file_backend
    if filename.startswith('pavi://'):
        return False
    if file_client_args is not None:
        client = FileClient.infer_client(file_client_args, filename)
        return client.name == 'HardDiskBackend'
    return isinstance(
        get_file_backend(filename, backend_args=backend_args), LocalBackend)


def _patch_save_checkpoint() -> None:
    import sys

    import mmengine.runner as runner_pkg
    import mmengine.runner.checkpoint as ckpt
    import mmengine.runner.runner as runner_mod
    original = ckpt.save_checkpoint
    if getattr(original, '_pad_mm_patched', False):
        return

    def save_checkpoint(checkpoint,
                        filename,
                        file_client_args=None,
                        backend_args=None):
        """mmengine's ``save_checkpoint``; local files are written
        atomically by pad_mm (see :mod:`pad_mm.runtime.checkpoint`)."""
        if not _is_local(str(filename), file_client_args, backend_args):
            return original(checkpoint, filename, file_client_args,
                            backend_args)
        save_checkpoint_atomic(checkpoint, str(filename))

    save_checkpoint._pad_mm_patched = True
    save_checkpoint.__wrapped__ = original
    # every name mmengine calls it by (Runner.save_checkpoint uses the one
    # imported into mmengine.runner.runner; CheckpointHook._publish_model
    # and the strategies import it at call time)
    ckpt.save_checkpoint = save_checkpoint
    runner_pkg.save_checkpoint = save_checkpoint
    runner_mod.save_checkpoint = save_checkpoint
    for name in ('mmengine._strategy.deepspeed',
                 'mmengine._strategy.colossalai'):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, 'save_checkpoint'):
            module.save_checkpoint = save_checkpoint


def _patch_checkpoint_hook() -> None:
    from mmengine.dist import is_main_process
    from mmengine.hooks import CheckpointHook
    original = CheckpointHook._save_checkpoint_with_step
    if getattr(original, '_pad_mm_patched', False):
        return

    def _save_checkpoint_with_step(self, runner, step, meta):
        # the same bookkeeping as mmengine 0.10.7 (so checkpoints hold the
        # same message hub), but the oldest checkpoint is deleted only
        # after the new one and last_checkpoint are complete on disk
        outdated = None
        if self.max_keep_ckpts > 0:
            if not (len(self.keep_ckpt_ids) > 0
                    and self.keep_ckpt_ids[-1] == step):
                if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                    outdated = self.keep_ckpt_ids.popleft()
                self.keep_ckpt_ids.append(step)
                runner.message_hub.update_info('keep_ckpt_ids',
                                               list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)

        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)

        if not is_main_process():
            return
        save_file = osp.join(runner.work_dir, 'last_checkpoint')
        try:
            atomic_write_text(save_file, self.last_ckpt)
        except OSError as exc:
            raise write_error(
                exc, f'could not update {save_file} after saving '
                f'{self.last_ckpt}', 'it still names the previous '
                'checkpoint, which is kept') from exc
        if outdated is not None:
            path = self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(outdated))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
                if osp.isfile(checksum_path(path)):
                    os.unlink(checksum_path(path))
            elif self.file_backend.isdir(path):
                # checkpoints saved by deepspeed are directories
                self.file_backend.rmtree(path)

    _save_checkpoint_with_step._pad_mm_patched = True
    _save_checkpoint_with_step.__wrapped__ = original
    CheckpointHook._save_checkpoint_with_step = _save_checkpoint_with_step


def _patch_load_or_resume() -> None:
    from mmengine.dist import is_main_process
    from mmengine.runner import Runner
    original = Runner.load_or_resume
    if getattr(original, '_pad_mm_patched', False):
        return

    def load_or_resume(self) -> None:
        """mmengine's ``load_or_resume``; a resume verifies its checkpoint
        first and an auto-resume skips torn ones (see
        :mod:`pad_mm.runtime.checkpoint`)."""
        if self._has_loaded or not self._resume:
            return original(self)
        if self._load_from is None:

            def decide():
                if is_main_process():
                    dirs = {self.work_dir}
                    last = read_last_checkpoint(self.work_dir)
                    if last is not None and osp.dirname(last):
                        dirs.add(osp.dirname(last))
                    for directory in sorted(dirs):
                        removed = remove_unfinished_writes(directory)
                        if removed:
                            self.logger.info(
                                f'resume: removed {len(removed)} unfinished '
                                f'write(s) of a killed run in {directory}: '
                                f'{", ".join(removed)}')
                return select_resume_checkpoint(self.work_dir, self.model,
                                                self.logger)

            resume_from = decide_on_rank0(decide)
            if resume_from is None:
                self.logger.info(
                    f'resume: no checkpoint in {self.work_dir}; training '
                    'starts from the beginning')
                return None
            self.logger.info(f'Auto resumed from the latest checkpoint '
                             f'{resume_from}.')
        elif '://' in str(self._load_from):  # a URL: nothing to check
            return original(self)
        else:
            resume_from = self._load_from
            shapes = model_shapes(self.model)

            def decide():
                try:
                    verify_checkpoint(resume_from, shapes)
                except CheckpointError as exc:
                    raise CheckpointError(
                        f'cannot resume from {resume_from}: {exc}') from None
                return resume_from

            decide_on_rank0(decide)
        self.resume(resume_from)
        self._has_loaded = True

    load_or_resume._pad_mm_patched = True
    load_or_resume.__wrapped__ = original
    Runner.load_or_resume = load_or_resume


def apply_atomic_save() -> None:
    """Atomic local saves, ``last_checkpoint`` replaced atomically and
    ``max_keep_ckpts`` deleting last (idempotent)."""
    _patch_save_checkpoint()
    _patch_checkpoint_hook()


def apply_verified_resume() -> None:
    """Resume verifies its checkpoint; auto-resume skips torn ones
    (idempotent)."""
    _patch_load_or_resume()


def apply_checkpoint_patches() -> None:
    """Both (idempotent)."""
    apply_atomic_save()
    apply_verified_resume()
