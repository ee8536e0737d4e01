"""Report commands: ``report`` (HTML, Markdown and model card from any run folders) and ``verify`` (tamper
evidence against ``MANIFEST.json``)."""

from __future__ import annotations

from pathlib import Path

COMMANDS = ("report", "verify")  # the sub-commands register() adds


def register(sub) -> None:
    p = sub.add_parser("report", help="render report.html, report.md and MODEL_CARD.md from run folders, and sign "
                                      "them in MANIFEST.json; exit 1 if a check failed")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="run folders: a filter job, training run, model stage, "
                                                          "audit or demo folder (several: one document)")
    p.add_argument("--out", help="where the documents go (default: the first DIR)")
    p.add_argument("--audience", choices=["internal", "public", "both"], default="internal",
                   help="internal: with samples and per-item evidence; public: without them (default internal)")
    p.add_argument("--no-manifest", action="store_true", help="do not (re)write MANIFEST.json in --out")
    p.add_argument("--quiet", action="store_true", help="do not print the checks table")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("verify", help="check a run folder against its MANIFEST.json: exit 1 naming any file added, "
                                      "removed or changed, 2 on a wrong key or a damaged manifest")
    p.add_argument("dir", metavar="DIR")
    p.set_defaults(func=cmd_verify)


def cmd_report(args) -> int:
    from fmaudit.errors import EXIT_CHECK_FAILED, EXIT_OK
    from fmaudit.reports.document import render_documents
    from fmaudit.reports.manifest import write_manifest
    from fmaudit.reports.table import format_checks

    out = Path(args.out) if args.out else Path(args.dirs[0])
    audiences = ["internal", "public"] if args.audience == "both" else [args.audience]
    written = {}
    for audience in audiences:
        written[audience] = render_documents(args.dirs, out, audience)
    from fmaudit.reports.collect import collect

    ev = collect(args.dirs)
    if not args.no_manifest:
        write_manifest(out)
    if not args.quiet:
        print(format_checks(ev.checks))
        print(f"checks: {'PASSED' if ev.passed else 'FAILED: ' + ', '.join(ev.failed)}")
    for audience, files in written.items():
        print(f"{audience}: " + ", ".join(str(p) for p in files.values()))
    return EXIT_OK if ev.passed else EXIT_CHECK_FAILED


def cmd_verify(args) -> int:
    from fmaudit.reports.manifest import verify_manifest

    result = verify_manifest(args.dir)
    print(f"{args.dir}: {result['files']} files match MANIFEST.json"
          f"{' (signature verified)' if result['signed'] else ' (unsigned: set FMAUDIT_MANIFEST_KEY to sign)'}")
    return 0
