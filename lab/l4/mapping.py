"""The mapping database: who mapped which page to whom (S95 §3.2, "recursive address spaces").

Every page mapping is a node whose parent is the mapping it was derived from; the roots are
sigma0's pages (physical memory, idempotent: sigma0's page at va is frame va).  Three operations
build and tear down address spaces recursively:

  map    the receiver gets a new child node of the mapper's node (rights can only shrink);
  grant  the mapper's node itself moves to the receiver (the mapper loses the page);
  flush  every node derived from the flushed pages loses the flushed rights, recursively,
         in every space (and, with `own`, the flusher's own mapping too).

Mapping from a page the mapper does not have is an error and changes nothing.  Every node
except the roots is materialised in the engine's page tables (machine.map / unmap / protect),
and unmap/protect also demap the TLB entry: no stale translation outlives its node.
"""
from .errors import InvalidArgument, SendMapFailed
from .fpage import intersect, subtract


class Node:
    __slots__ = ("task", "va", "pa", "rights", "parent", "children")

    def __init__(self, task, va, pa, rights, parent):
        self.task, self.va, self.pa, self.rights, self.parent = task, va, pa, rights, parent
        self.children = []

    @property
    def depth(self):
        d, n = 0, self
        while n.parent is not None:
            d, n = d + 1, n.parent
        return d

    def __repr__(self):
        return f"<mapping {self.task.name}:0x{self.va:x} -> 0x{self.pa:x} {self.rights}>"


class MappingDatabase:
    def __init__(self, machine, on_root_released=None):
        self.m = machine
        self.roots = {}              # pa -> sigma0's node
        self.by_task = {}            # task number -> {va: Node}
        self.on_root_released = on_root_released

    # -- lookups --
    def lookup(self, task, va):
        if task.is_sigma0:
            return self.roots.get(va)
        return self.by_task.get(task.number, {}).get(va)

    def nodes_of(self, task, fpage=None):
        """The task's nodes (in the fpage, if given), by address."""
        d = self.by_task.get(task.number, {})
        vas = sorted(d) if fpage is None else sorted(v for v in d if fpage.contains(v))
        return [d[v] for v in vas]

    def owned(self, task, fpage):
        """[(va, node)] for every page of `fpage`; SendMapFailed if the task lacks any of them
        (a mapper can only pass on what it has)."""
        out = []
        for va in fpage.pages():
            n = self.lookup(task, va)
            if n is None:
                raise SendMapFailed(f"map: task {task.name} has no page at 0x{va:x} to map")
            out.append((va, n))
        return out

    def root(self, pa):
        """Sigma0's node for frame `pa` (created when sigma0 hands the frame out)."""
        n = self.roots.get(pa)
        if n is None:
            n = self.roots[pa] = Node(self.sigma0, pa, pa, "rwx", None)
        return n

    # -- map and grant --
    def map(self, src, dst_task, dst_va, rights, grant=False):
        """Map (or grant) node `src` to `dst_task` at `dst_va` with at most `rights`.
        Returns (the receiver's node, nodes removed on the way: an older mapping there)."""
        rights = intersect(src.rights, rights)
        old = self.lookup(dst_task, dst_va)
        if old is src:
            # the page is already there, as this very mapping: nothing to do (raising here,
            # in the middle of an IPC transfer, left the strings copied and the receiver waiting)
            return old, []
        if grant and src.parent is None:              # checked before anything is removed
            raise InvalidArgument("grant: sigma0's pages are mapped, not granted")
        if old is not None and old.pa == src.pa and old.parent is src and not grant:
            # mapping the same page again only extends the rights (L4's "upgrade")
            new = intersect(src.rights, "".join(sorted(set(old.rights) | set(rights))))
            if new != old.rights:
                old.rights = new
                self.m.protect(dst_task.sid, dst_va, new)
            return old, []
        if old is not None and old.pa == src.pa and self._derives(src, old):
            return self._onto_ancestor(src, old, rights, grant)
        removed = self.remove_subtree(old) if old is not None else []
        if grant:
            self._detach_engine(src)
            del self.by_task[src.task.number][src.va]
            lost = "".join(x for x in "wx" if x in src.rights and x not in rights)
            src.task, src.va, src.rights = dst_task, dst_va, rights
            node = src
            if lost:                                  # children keep at most the new rights
                for c in list(node.children):
                    removed += self._revoke(c, lost)
        else:
            node = Node(dst_task, dst_va, src.pa, rights, src)
            src.children.append(node)
        self.by_task.setdefault(dst_task.number, {})[dst_va] = node
        self.m.map(dst_task.sid, dst_va, node.pa, node.rights)
        return node, removed

    @staticmethod
    def _derives(node, ancestor):
        n = node.parent
        while n is not None and n is not ancestor:
            n = n.parent
        return n is ancestor

    def _onto_ancestor(self, src, old, rights, grant):
        """Map or grant `src` onto `old`, a mapping it derives from.  Replacing `old` would
        flush `src` itself (and free the frame while the new node still maps it).  `old`
        already has at least src's rights: a map changes nothing; a grant gives src's page
        back -- the granter loses it, and what was derived from it now derives from `old`
        (with at most the granted rights)."""
        if not grant:
            return old, []
        self._detach_engine(src)
        del self.by_task[src.task.number][src.va]
        src.parent.children.remove(src)
        kids, src.children, src.parent = src.children, [], None
        for c in kids:
            c.parent = old
            old.children.append(c)
        removed = [src]
        lost = "".join(x for x in "wx" if x in src.rights and x not in rights)
        if lost:
            for c in kids:
                removed += self._revoke(c, lost)
        return old, removed

    # -- flush --
    def flush(self, task, fpage, rights="rwx", own=False):
        """Remove `rights` from every mapping derived from the task's pages in `fpage`
        (recursively, in every space); with `own` from the task's own mappings too.
        Returns the nodes removed or reduced."""
        affected = []
        nodes = [self.roots[p] for p in sorted(self.roots) if fpage.contains(p)] \
            if task.is_sigma0 else self.nodes_of(task, fpage)
        for n in nodes:
            if own and n.parent is not None:
                affected += self._revoke(n, rights)
            else:
                for c in list(n.children):
                    affected += self._revoke(c, rights)
        return affected

    def _revoke(self, node, rights):
        """Take `rights` from `node` and everything derived from it."""
        left = subtract(node.rights, rights)
        if left is None:
            return self.remove_subtree(node)
        out = []
        if left != node.rights:
            node.rights = left
            self.m.protect(node.task.sid, node.va, left)
            out.append(node)
        for c in list(node.children):
            out += self._revoke(c, rights)
        return out

    def remove_subtree(self, node):
        """Delete `node` and every node derived from it (children first)."""
        out = []
        for c in list(node.children):
            out += self.remove_subtree(c)
        if node.parent is None:                       # a root: sigma0 keeps its frames
            return out
        self._detach_engine(node)
        del self.by_task[node.task.number][node.va]
        parent = node.parent
        parent.children.remove(node)
        node.parent = None
        out.append(node)
        if parent.parent is None and not parent.children:
            self._release_root(parent)
        return out

    def _release_root(self, root):
        del self.roots[root.pa]
        if self.on_root_released is not None:
            self.on_root_released(root.pa)

    def _detach_engine(self, node):
        if node.task.alive:
            self.m.unmap(node.task.sid, node.va)

    def remove_task(self, task):
        """Every mapping of the task and everything derived from it (task deletion)."""
        out = []
        for n in self.nodes_of(task):
            if self.lookup(task, n.va) is n:          # not already gone with an ancestor
                out += self.remove_subtree(n)
        self.by_task.pop(task.number, None)
        return out

    # -- views --
    def tree(self, pa):
        """The mapping tree of frame `pa` as nested dicts (for views and tests)."""
        def walk(n):
            return {"task": n.task.name, "va": n.va, "rights": n.rights,
                    "children": [walk(c) for c in n.children]}
        r = self.roots.get(pa)
        return None if r is None else walk(r)

    def mappings(self, task):
        """{va: (pa, rights)} of the task's pages."""
        return {n.va: (n.pa, n.rights) for n in self.nodes_of(task)}
