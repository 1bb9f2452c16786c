import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

#: what ``mim`` and mmengine's ``pad_mm::`` inheritance look for under
#: ``pad_mm/.mim`` of an installed package (as mmseg / mmdet ship them)
MIM_FILES = ('configs', 'tools', 'model-index.yml',
             'model-index-mmpretrain.yml')


def version():
    scope = {}
    with open('pad_mm/version.py') as f:
        exec(f.read(), scope)
    return scope['__version__']


def add_mim_extension():
    """Put configs/, tools/ and the model indexes under ``pad_mm/.mim``.

    Symlinks for a development install (``setup.py develop``,
    ``pip install -e .``), copies when a wheel or sdist is built, so that a
    non-editable install carries them (the pattern of mmseg's and mmdet's
    ``setup.py``). Any other command leaves ``pad_mm/.mim`` as it is.
    """
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif 'sdist' in sys.argv or 'bdist_wheel' in sys.argv:
        mode = 'copy'
    else:
        return
    repo_path = osp.dirname(osp.abspath(__file__))
    mim_path = osp.join(repo_path, 'pad_mm', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for filename in MIM_FILES:
        src_path = osp.join(repo_path, filename)
        if not osp.exists(src_path):
            continue
        tar_path = osp.join(mim_path, filename)
        if osp.islink(tar_path) or osp.isfile(tar_path):
            os.remove(tar_path)
        elif osp.isdir(tar_path):
            shutil.rmtree(tar_path)
        if mode == 'symlink':
            os.symlink(osp.relpath(src_path, mim_path), tar_path)
        elif osp.isfile(src_path):
            shutil.copyfile(src_path, tar_path)
        else:
            shutil.copytree(src_path, tar_path, ignore=shutil.ignore_patterns(
                '__pycache__', '*.pyc'))


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='pad_mm',
        version=version(),
        description='PAD-Nets (pixel-wise adaptive dilation) for OpenMMLab',
        long_description=open('README.md').read(),
        long_description_content_type='text/markdown',
        url='https://openreview.net/forum?id=rye4lT4tvB',
        packages=find_packages(include=['pad_mm', 'pad_mm.*']),
        # configs, tools and model indexes under pad_mm/.mim (see above);
        # the C source of the hard path's helpers (compiled on first use)
        package_data={'pad_mm': ['.mim/*.yml', '.mim/configs/**/*',
                                 '.mim/tools/**/*', 'ops/csrc/*.c']},
        exclude_package_data={'pad_mm': ['**/__pycache__/*', '**/*.pyc']},
        include_package_data=False,
        python_requires='>=3.11',
        # pad_mm.ops needs torch only; pad_mm.models mmengine and mmcv;
        # the tasks their codebase: pip install "pad_mm[seg]", "[cls]" or
        # "[all]" (see docs/advanced/registry.md)
        install_requires=[
            'torch>=2.1,<2.14', 'torchvision', 'mmengine==0.10.7',
            'mmcv==2.1.0', 'matplotlib', 'scipy'
        ],
        extras_require=dict(
            seg=['mmsegmentation==1.2.2', 'ftfy', 'regex'],
            cls=['mmpretrain==1.2.0'],
            all=['mmsegmentation==1.2.2', 'ftfy', 'regex',
                 'mmpretrain==1.2.0'],
            tests=['pytest>=7', 'pytest-xdist>=3.5', 'onnx>=1.15',
                   'onnxruntime>=1.17',
                   'tensorboard>=2.14'],
            # `mim list / search / train pad_mm` (installed without its
            # openxlab dependency chain, see tools/setup_env.sh)
            mim=['openmim>=0.3.9']),
        license='Apache-2.0',
        classifiers=['License :: OSI Approved :: Apache Software License'],
        zip_safe=False,
    )
