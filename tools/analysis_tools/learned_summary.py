"""The numbers of the analysis guide ("What did it learn?") from the JSON
files the analysis tools wrote under OUT (see
tools/analysis_tools/what_it_learned.sh, which runs them all):

    python tools/analysis_tools/learned_summary.py OUT \
        [--seeds SUMMARY_JSON [--config-name NAME]]

Writes OUT/summary.json and OUT/summary.md (the guide's tables) and prints
the markdown.
"""
import argparse
import os.path as osp
import sys

_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if osp.isdir(osp.join(_ROOT, 'pad_mm')):  # a source checkout, not .mim/
    sys.path.insert(0, _ROOT)

from pad_mm.evaluation.learned import (learned_markdown,  # noqa: E402
                                       learned_summary)
from pad_mm.visualization import write_json  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Tables of what a PAD model learned, from the analysis '
        "tools' JSON files")
    parser.add_argument('out_dir', help='the folder the analysis tools '
                        'wrote (stats/, rf/, activation/)')
    parser.add_argument('--seeds', help="a sweep's summary.json with runs "
                        'of the same config, for the spread between seeds')
    parser.add_argument('--config-name', help='the config\'s name in '
                        '--seeds (default: the statistics\' config file '
                        'name)')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    summary = learned_summary(args.out_dir, args.seeds, args.config_name)
    write_json(summary, osp.join(args.out_dir, 'summary.json'))
    text = learned_markdown(summary)
    with open(osp.join(args.out_dir, 'summary.md'), 'w') as f:
        f.write(text)
    print(text, end='')
    return summary


if __name__ == '__main__':
    from pad_mm.utils.cli import exit_if_shadowed  # noqa: E402
    exit_if_shadowed()  # a folder named pad_mm here shadows the package
    main()
