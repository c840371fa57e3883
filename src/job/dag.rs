//! Execution order of steps: a stable topological sort that names cycles.

/// Orders nodes so each comes after its dependencies; among independent nodes the
/// original (file) order is kept. `deps[i]` lists the nodes `i` depends on.
///
/// Returns the order of every node not caught in a cycle, and each cycle found
/// (its members in dependency order, starting from the lowest index).
pub(crate) fn order(deps: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let n = deps.len();
    let mut done = vec![false; n];
    let mut broken = vec![false; n];
    let mut order = Vec::with_capacity(n);
    let mut cycles = Vec::new();
    loop {
        let ready = (0..n).find(|&i| {
            !done[i] && !broken[i] && deps[i].iter().all(|&d| d >= n || done[d] || broken[d])
        });
        if let Some(i) = ready {
            // A node downstream of a cycle has no valid place: leave it out.
            if deps[i].iter().any(|&d| d < n && broken[d]) {
                broken[i] = true;
            } else {
                done[i] = true;
                order.push(i);
            }
            continue;
        }
        let Some(start) = (0..n).find(|&i| !done[i] && !broken[i]) else {
            break;
        };
        let cycle = find_cycle(deps, start, &done, &broken);
        for &i in &cycle {
            broken[i] = true;
        }
        cycles.push(cycle);
    }
    (order, cycles)
}

/// Walks pending dependencies from `start` until a node repeats. Every pending node
/// has a pending dependency (else it would have been ready), so the walk closes.
fn find_cycle(deps: &[Vec<usize>], start: usize, done: &[bool], broken: &[bool]) -> Vec<usize> {
    let pending = |i: usize| i < deps.len() && !done[i] && !broken[i];
    let mut path = vec![start];
    let mut current = start;
    loop {
        let Some(&next) = deps[current].iter().find(|&&d| pending(d)) else {
            return path;
        };
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let mut cycle = path.split_off(pos);
            let lowest = cycle
                .iter()
                .enumerate()
                .min_by_key(|&(_, &v)| v)
                .map_or(0, |(i, _)| i);
            cycle.rotate_left(lowest);
            return cycle;
        }
        path.push(next);
        current = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_file_order_among_independent_nodes() {
        // 0 needs 2, 1 is free, 2 is free: 1 and 2 are ready first, in file order.
        let (order, cycles) = order(&[vec![2], vec![], vec![]]);
        assert_eq!(order, vec![1, 2, 0]);
        assert!(cycles.is_empty());
    }

    #[test]
    fn chain_is_reversed_into_dependency_order() {
        let (order, _) = order(&[vec![1], vec![2], vec![]]);
        assert_eq!(order, vec![2, 1, 0]);
    }

    #[test]
    fn names_a_cycle_and_leaves_out_its_dependants() {
        // 1 -> 2 -> 3 -> 1 is a cycle, 4 depends on it, 0 is free.
        let deps = [vec![], vec![2], vec![3], vec![1], vec![3]];
        let (order, cycles) = order(&deps);
        assert_eq!(order, vec![0]);
        assert_eq!(cycles, vec![vec![1, 2, 3]]);
    }

    #[test]
    fn self_reference_and_two_separate_cycles() {
        let deps = [vec![0], vec![2], vec![1]];
        let (order, cycles) = order(&deps);
        assert!(order.is_empty());
        assert_eq!(cycles, vec![vec![0], vec![1, 2]]);
    }
}
