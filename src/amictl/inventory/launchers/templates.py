"""Launch templates named by another service's resource (a Batch compute environment),
resolved after the scan against the region's ``launch-templates`` slice, as
``collectors.resolve_asg_references`` resolves an Auto Scaling group's."""

from __future__ import annotations

from typing import Any

from ...model import Reference

# (reference kind, resource id, detail, {"LaunchTemplateId"|"LaunchTemplateName", "Version"})
TemplateSpec = tuple[str, str, str, dict[str, Any]]


def template_references(
    specs: list[TemplateSpec],
    templates: dict[str, dict[str, Any]],
    account: str,
    region: str,
) -> list[Reference]:
    """One reference per spec whose template version names an image ($Default, $Latest
    or a number). A template that does not exist (any more) launches nothing."""
    by_name = {t["name"]: tid for tid, t in templates.items()}
    out = []
    for kind, rid, detail, spec in specs:
        tid = spec.get("LaunchTemplateId") or by_name.get(spec.get("LaunchTemplateName") or "", "")
        t = templates.get(tid)
        if t is None:
            continue
        ver = str(spec.get("Version") or "$Default")
        try:
            n = t["default"] if ver == "$Default" else t["latest"] if ver == "$Latest" else int(ver)
        except ValueError:
            continue
        image = t["versions"].get(n)
        if image and image.startswith("ami-"):
            out.append(
                Reference(
                    kind,
                    rid,
                    f"{detail} {tid} ({t['name']}) {ver} = version {n}",
                    image,
                    account,
                    region,
                )
            )
    return out
