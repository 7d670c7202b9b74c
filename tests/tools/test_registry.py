"""Registry: every tool builds by name, schemas describe every knob, imports stay lazy."""

import subprocess
import sys

import pytest

from liwi.tools.base import Tool, ToolError
from liwi.tools.registry import DEFAULT_BACKENDS, available, get_tool, tool_schemas


@pytest.mark.parametrize("name", sorted(DEFAULT_BACKENDS))
def test_classical_tools_build_by_name(name):
    tool = get_tool(name)
    assert isinstance(tool, Tool) and tool.name == name


def test_unknown_tools_backends_and_config_are_errors():
    with pytest.raises(ToolError, match="unknown tool"):
        get_tool("teleport")
    with pytest.raises(ToolError, match="no backend"):
        get_tool("segment", "magic")
    with pytest.raises(ToolError, match="bad config"):
        get_tool("segment", checkpoint="/x.pt")


def test_every_backend_builds_and_describes_itself():
    for name, backends in available().items():
        for backend in backends:
            schema = tool_schemas({name: backend})[0]
            assert schema["type"] == "function"
            fn = schema["function"]
            assert fn["name"] == name and fn["description"]
            props = fn["parameters"].get("properties", {})
            assert props, f"{name}/{backend} has no parameters"
            missing = [k for k, v in props.items() if not v.get("description")]
            assert not missing, f"{name}/{backend}: knobs without description: {missing}"


def test_default_schemas_are_the_four_classical_tools():
    names = [s["function"]["name"] for s in tool_schemas()]
    assert names == ["segment", "refine_alpha", "inpaint", "extract_shadow"]


def test_registry_and_schemas_import_nothing_heavy():
    code = (
        "import sys; from liwi.tools.registry import tool_schemas, available; "
        "tool_schemas({n: b[-1] for n, b in available().items()}); "
        "print(','.join(m for m in ('torch','cv2','diffusers','transformers','sam2',"
        "'pymatting') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
