from setuptools import find_packages, setup


def version():
    scope = {}
    with open('pad_mm/version.py') as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='pad_mm',
    version=version(),
    description='PAD-Nets (pixel-wise adaptive dilation) for OpenMMLab',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['pad_mm', 'pad_mm.*']),
    python_requires='>=3.11',
    install_requires=[
        'torch>=2.1,<2.14', 'torchvision', 'mmengine==0.10.7',
        'mmcv==2.1.0', 'mmsegmentation==1.2.2', 'mmpretrain==1.2.0',
        'ftfy', 'regex', 'matplotlib'
    ],
    extras_require=dict(
        tests=['pytest>=7', 'onnx>=1.15', 'onnxruntime>=1.17',
               'tensorboard>=2.14']),
    license='Apache-2.0',
)
