//! Disjoint sets over node ids: union by rank, find with path halving.
//!
//! Both keep trees shallow (amortised near-constant time per operation), and
//! `find` is a loop, not recursion, so a chain of millions of links (a degenerate
//! input) cannot overflow the stack. Five bytes per node: a `u32` parent and a
//! `u8` rank (ranks never exceed log2 of the node count).

/// The forest; node ids are `0..len`.
pub struct UnionFind {
    parent: Vec<u32>,
    rank: Vec<u8>,
}

impl UnionFind {
    /// `len` singleton sets.
    pub fn new(len: u32) -> Self {
        Self {
            parent: (0..len).collect(),
            rank: vec![0; len as usize],
        }
    }

    /// The representative of `x`'s set; halves the path on the way up.
    pub fn find(&mut self, mut x: u32) -> u32 {
        loop {
            let parent = self.parent[x as usize];
            if parent == x {
                return x;
            }
            let grandparent = self.parent[parent as usize];
            self.parent[x as usize] = grandparent;
            x = grandparent;
        }
    }

    /// Joins the sets of `a` and `b`; false when they were already one set.
    pub fn union(&mut self, a: u32, b: u32) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        let (low, high) = match self.rank[ra as usize].cmp(&self.rank[rb as usize]) {
            std::cmp::Ordering::Less => (ra, rb),
            std::cmp::Ordering::Greater => (rb, ra),
            std::cmp::Ordering::Equal => {
                self.rank[ra as usize] += 1;
                (rb, ra)
            }
        };
        self.parent[low as usize] = high;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unions_are_transitive_and_idempotent() {
        let mut uf = UnionFind::new(6);
        assert!(uf.union(0, 1));
        assert!(uf.union(2, 3));
        assert!(uf.union(1, 3));
        assert!(!uf.union(0, 2));
        assert_eq!(uf.find(0), uf.find(3));
        assert_ne!(uf.find(0), uf.find(4));
        assert_ne!(uf.find(4), uf.find(5));
    }

    #[test]
    fn a_long_chain_stays_shallow_and_needs_no_recursion() {
        let n = 1_000_000;
        let mut uf = UnionFind::new(n);
        for i in 1..n {
            uf.union(i - 1, i);
        }
        let root = uf.find(0);
        assert!((0..n).all(|i| uf.find(i) == root));
        // Union by rank bounds the height by log2(n) < 20.
        assert!(uf.rank.iter().all(|&r| r < 20));
    }
}
