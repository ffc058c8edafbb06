"""docs/reliability.md's fault matrix matches the fault tests' docstrings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.system.matrix import (
    DOC,
    NOT_RUN,
    MatrixError,
    render,
    results_from_junit,
    results_in,
    rows,
    table_in,
)


def test_the_committed_matrix_is_up_to_date() -> None:
    text = DOC.read_text()
    assert table_in(text) == render(rows(), results_in(text)), (
        "run: python -m tests.system.matrix --write (or make faults)"
    )


def test_every_fault_test_has_the_three_parts() -> None:
    found = rows()
    assert found, "no test_fault_* in tests/system"
    for row in found:
        assert row.fault, row.test
        assert row.system, row.test
        assert row.check, row.test


def test_a_docstring_without_the_three_parts_is_refused(tmp_path: Path) -> None:
    (tmp_path / "test_faults_x.py").write_text(
        '"""Fault matrix: x."""\n\n'
        'def test_fault_one() -> None:\n    """Fault: a / System: b / Check: c"""\n\n'
        'def test_fault_two() -> None:\n    """Fault: a, System: b."""\n'
    )
    with pytest.raises(MatrixError, match=r"test_faults_x.py::test_fault_two: docstring"):
        rows(tmp_path)


def test_results_come_from_a_junit_report_and_back_from_the_table(tmp_path: Path) -> None:
    (tmp_path / "test_faults_x.py").write_text(
        '"""Fault matrix: cuts and stops."""\n\n'
        'def test_fault_cut() -> None:\n    """Fault: a | b / System: c / Check: d"""\n\n'
        'def test_fault_stop() -> None:\n    """Fault: e / System: f / Check: g"""\n\n'
        'def test_fault_new() -> None:\n    """Fault: h / System: i / Check: j"""\n'
    )
    junit = tmp_path / "run.xml"
    junit.write_text(
        "<testsuites><testsuite>"
        '<testcase classname="tests.system.test_faults_x" name="test_fault_cut[a]"/>'
        '<testcase classname="tests.system.test_faults_x" name="test_fault_cut[b]">'
        "<failure/></testcase>"
        '<testcase classname="tests.system.test_faults_x" name="test_fault_stop"/>'
        '<testcase classname="tests.system.test_other" name="test_helper"/>'
        "</testsuite></testsuites>"
    )
    results = results_from_junit(junit)
    assert results == {"test_fault_cut": "FAIL", "test_fault_stop": "pass"}
    table = render(rows(tmp_path), results, tmp_path)
    assert "### Cuts and stops" in table
    assert "| a \\| b | c | d | FAIL (`test_fault_cut`) |" in table
    assert f"| h | i | j | {NOT_RUN} (`test_fault_new`) |" in table
    assert results_in(table) == {**results, "test_fault_new": NOT_RUN}
