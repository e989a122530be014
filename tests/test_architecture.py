"""The shape of the package: every import points down.

The modules form layers (core → data → training loop → models → losses that need models → applications → surface),
and the notebook numbers follow them. Imports inside functions count: a lazy import that dodges a cycle is still a
cycle. Run alone with `pytest tests/test_architecture.py`; `python tests/test_architecture.py` prints the graph.
"""
import ast, re, sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent/'restorelab'
SURFACE = {'restorelab', 'restorelab.all'}   # the package root and the star-import surface gather everything
MAX_LINES = 400


def _modules() -> dict:
    "Module name -> file, for every module of the package but the nbdev index."
    mods = {}
    for f in sorted(PKG.rglob('*.py')):
        if f.name == '_modidx.py': continue
        parts = list(f.relative_to(PKG.parent).with_suffix('').parts)
        if parts[-1] == '__init__': parts = parts[:-1]
        mods['.'.join(parts)] = f
    return mods


def import_graph() -> dict:
    "Module -> the restorelab modules it imports, at the top or anywhere inside (functions, `if` blocks ...)."
    mods = _modules()
    def known(name):
        while name and name not in mods: name = name.rpartition('.')[0]
        return name
    graph = {}
    for mod, f in mods.items():
        pkg = mod.split('.') if f.name == '__init__.py' else mod.split('.')[:-1]
        targets = set()
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import): names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = '.'.join(pkg[:len(pkg) - node.level + 1] + [node.module] if node.module else
                                pkg[:len(pkg) - node.level + 1]) if node.level else node.module or ''
                names = [base] + [f'{base}.{a.name}' for a in node.names]
            else: continue
            for name in names:
                if name == 'restorelab' or name.startswith('restorelab.'):
                    target = known(name)
                    if target and target != mod and target not in SURFACE: targets.add(target)
        graph[mod] = targets
    return graph


def find_cycles(graph: dict) -> list:
    "Every cycle reachable by a depth-first walk, as lists of modules."
    state, cycles = {}, []
    def visit(v, path):
        state[v] = 'open'
        for w in sorted(graph[v]):
            if state.get(w) == 'open': cycles.append(path[path.index(w):] + [w])
            elif w not in state: visit(w, path + [w])
        state[v] = 'done'
    for v in sorted(graph):
        if v not in state: visit(v, [v])
    return cycles


def notebook_of(f: Path):
    "The notebook a module is exported from (nbdev's header line), e.g. '05_data.core.ipynb'."
    m = re.search(r'File to edit: .*?nbs/(\S+\.ipynb)', f.read_text())
    return m.group(1) if m else None


def test_no_import_cycle():
    cycles = find_cycles(import_graph())
    assert not cycles, 'import cycles:\n' + '\n'.join(' -> '.join(c) for c in cycles)


def test_notebook_numbers_follow_the_imports():
    "A module imports only modules of lower-numbered notebooks: the numbers read as the layers."
    mods, graph = _modules(), import_graph()
    number = {m: int(nb.split('_')[0]) for m, f in mods.items() if (nb := notebook_of(f))}
    wrong = [f'{m} ({number[m]}) imports {t} ({number[t]})' for m in graph if m in number and m not in SURFACE
             for t in graph[m] if t in number and number[t] >= number[m]]
    assert not wrong, '\n'.join(wrong)


@pytest.mark.parametrize('mod', sorted(_modules()))
def test_module_size(mod):
    "One concept per module, and small enough to read: at most 400 lines."
    n = len(_modules()[mod].read_text().splitlines())
    assert n <= MAX_LINES, f'{mod} has {n} lines'


def test_surface_gathers_every_module():
    "`restorelab.all` re-exports every module's public names (cli and test_utils are tools, not API)."
    text = (PKG/'all.py').read_text()
    missing = [m for m in _modules() if m not in SURFACE | {'restorelab.cli', 'restorelab.test_utils'}
               and m.count('.') and f"from .{m.split('.', 1)[1]} import" not in text
               and not any(k.startswith(m + '.') for k in _modules())]
    assert not missing, missing


if __name__ == '__main__':
    graph = import_graph()
    for mod in sorted(graph, key=lambda m: (notebook_of(_modules()[m]) or '~', m)):
        print(f"{notebook_of(_modules()[mod]) or '-':28s} {mod:32s} -> {', '.join(sorted(graph[mod])) or '(nothing)'}")
    cycles = find_cycles(graph)
    print('cycles:', cycles or 'none')
    sys.exit(1 if cycles else 0)
