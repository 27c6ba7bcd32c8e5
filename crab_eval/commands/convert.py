"""``crab-eval convert``: a client's output (Crab, Crab+, lmms-eval, any JSON Lines) -> a contract prediction file."""

from __future__ import annotations

import argparse
from typing import Any

from crab_eval.clients import ON_CONFLICT, SOURCES, Conversion, convert, write_predictions
from crab_eval.commands.common import subparser
from crab_eval.registry import get_task

EXAMPLES = """\
  crab-eval convert --from crab --task ave --data AVE_Dataset RUN/inference_ave/infer_results.jsonl --out p.jsonl
  crab-eval convert --from crab --task ms3 --data AVSBench RUN --out ms3.jsonl   (RUN/inference_ms3/mask_img_dir)
  crab-eval convert --from crab-plus --task meld --data AVUIE_2/meld CKPT --out meld.jsonl
  crab-eval convert --from lmms-eval --task avqa --data AVQA --id-map ids.json OUT/m/x_samples_avqa.jsonl --out p.jsonl
  crab-eval convert --from jsonl --task ks --data KS --id-field meta.id --text-field out in.jsonl --out p.jsonl"""


def add_client_arguments(parser: argparse.ArgumentParser, required: bool) -> None:
    """The options that say how to read a client's output (shared by convert and score --from)."""
    parser.add_argument(
        "--from",
        dest="source",
        choices=SOURCES,
        required=required,
        help="the tool that wrote INPUT: crab, crab-plus (GeWu-Lab/Crab, Crab_Plus inference scripts), lmms-eval "
        "(--log_samples files), jsonl (any JSON Lines, with --id-field/--text-field)",
    )
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="the client's output files, or its run folder (--ckpt_dir; the task's own file in it is used)",
    )
    parser.add_argument(
        "--masks",
        default=None,
        metavar="DIR",
        help="Crab's mask_img_dir of an S4, MS3 or AVSS run ({uid}/{i}_pred.png); default: found beside INPUT",
    )
    parser.add_argument(
        "--id-field",
        default=None,
        metavar="PATH",
        help="jsonl: dotted path of the sample id (default 'id'); lmms-eval: read the id from this field (e.g. "
        "doc.question_id) instead of doc_id",
    )
    parser.add_argument(
        "--text-field",
        default=None,
        metavar="PATH",
        help="dotted path of the model's text (default: jsonl 'text', lmms-eval 'filtered_resps' or 'resps')",
    )
    parser.add_argument(
        "--id-map",
        default=None,
        metavar="FILE",
        help="lmms-eval: doc_id is a position in the task's evaluation split; by default it is taken as the "
        "position in crab-eval's order of the split (right only if your lmms-eval task reads the same file in the "
        "same order); FILE maps doc_id -> sample id instead (a JSON list, or an object {doc_id: id}). Crab "
        "masks (S4, MS3): FILE maps the folder uid -> sample id (Crab's {s4,ms3}_samples.json or AVSBench-semantic "
        "metadata.csv, uid -> vid; or an object {uid: id})",
    )
    parser.add_argument(
        "--on-conflict",
        choices=ON_CONFLICT,
        default="error",
        help="two different answers for one sample (e.g. an appended rerun): error (default), or keep the first "
        "or the last",
    )
    parser.add_argument(
        "--by-position",
        action="store_true",
        help="lines that carry no id (Crab+ AVVP) are the split's samples in order: only for a one-rank run",
    )


def run_conversion(args: argparse.Namespace) -> Conversion:
    task = get_task(args.task)
    conversion = convert(
        args.source,
        task.id,
        args.data,
        args.inputs,
        split=args.split,
        masks=args.masks,
        id_field=args.id_field,
        text_field=args.text_field,
        id_map=args.id_map,
        on_conflict=args.on_conflict,
        by_position=args.by_position,
    )
    print("\n".join(conversion.report.lines()))
    return conversion


def add_parser(sub: Any) -> None:
    parser = subparser(
        sub,
        "convert",
        "convert a client's output (Crab, Crab+, lmms-eval, any JSON Lines) into a prediction file that score "
        "reads; says what it did with every line",
        EXAMPLES.strip(),
    )
    parser.add_argument("--task", required=True, help="task id (see 'crab-eval tasks')")
    parser.add_argument("--data", required=True, help="folder with the benchmark's official annotation files")
    parser.add_argument("--split", default=None, help="split (default: the task's default, usually test)")
    add_client_arguments(parser, required=True)
    parser.add_argument("--out", required=True, help="prediction file to write (JSONL, written atomically)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    conversion = run_conversion(args)
    write_predictions(conversion.rows, args.out)
    print(f"wrote {args.out} ({len(conversion.rows)} predictions)")
    return 0
