//! Batch assignment for a core team with known capacity: the assignment of
//! open tasks to members that maximizes the total expected gain, solved
//! exactly as a min-cost flow (successive shortest paths with potentials).
//!
//! Network: source → member (capacity = the member's capacity, cost 0) →
//! task (capacity 1, cost = -gain, only where the member is eligible) →
//! sink (capacity = the task's free slots, cost 0). Every augmenting path
//! carries one unit, so the result is integral; stopping when the cheapest
//! path no longer has negative cost maximizes gain rather than volume.

/// Gains are scaled to integers so that path costs compare exactly.
const SCALE: f64 = 1_000_000.0;

/// One member's eligible tasks with the gain of giving each to them.
#[derive(Debug, Clone)]
pub struct Member {
    pub capacity: u32,
    /// (task index, expected gain >= 0).
    pub options: Vec<(usize, f64)>,
}

struct Edge {
    to: usize,
    capacity: i64,
    cost: i64,
}

struct Graph {
    edges: Vec<Edge>,
    adjacency: Vec<Vec<usize>>,
}

impl Graph {
    fn new(nodes: usize) -> Graph {
        Graph {
            edges: Vec::new(),
            adjacency: vec![Vec::new(); nodes],
        }
    }

    fn add(&mut self, from: usize, to: usize, capacity: i64, cost: i64) {
        self.adjacency[from].push(self.edges.len());
        self.edges.push(Edge { to, capacity, cost });
        self.adjacency[to].push(self.edges.len());
        self.edges.push(Edge {
            to: from,
            capacity: 0,
            cost: -cost,
        });
    }
}

/// Assigns tasks (each with `slots` free places) to members; returns
/// (member index, task index) pairs, each pair at most once.
pub fn assign(members: &[Member], slots: &[u32]) -> Vec<(usize, usize)> {
    let (source, first_member) = (0, 1);
    let first_task = first_member + members.len();
    let sink = first_task + slots.len();
    let mut graph = Graph::new(sink + 1);
    for (index, member) in members.iter().enumerate() {
        graph.add(source, first_member + index, i64::from(member.capacity), 0);
        for &(task, gain) in &member.options {
            if task < slots.len() {
                graph.add(
                    first_member + index,
                    first_task + task,
                    1,
                    -((gain.max(0.0) * SCALE).round() as i64),
                );
            }
        }
    }
    for (task, &free) in slots.iter().enumerate() {
        graph.add(first_task + task, sink, i64::from(free), 0);
    }
    // Bellman-Ford once for the potentials (costs may be negative), then Dijkstra.
    let nodes = sink + 1;
    let mut potential = vec![i64::MAX; nodes];
    potential[source] = 0;
    for _ in 0..nodes {
        let mut changed = false;
        for from in 0..nodes {
            if potential[from] == i64::MAX {
                continue;
            }
            for &edge in &graph.adjacency[from] {
                let Edge { to, capacity, cost } = graph.edges[edge];
                if capacity > 0 && potential[from] + cost < potential[to] {
                    potential[to] = potential[from] + cost;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    loop {
        let mut distance = vec![i64::MAX; nodes];
        let mut previous = vec![usize::MAX; nodes];
        let mut queue = std::collections::BinaryHeap::new();
        distance[source] = 0;
        queue.push(std::cmp::Reverse((0i64, source)));
        while let Some(std::cmp::Reverse((dist, node))) = queue.pop() {
            if dist > distance[node] || potential[node] == i64::MAX {
                continue;
            }
            for &edge in &graph.adjacency[node] {
                let Edge { to, capacity, cost } = graph.edges[edge];
                if capacity <= 0 || potential[to] == i64::MAX {
                    continue;
                }
                let reduced = dist + cost + potential[node] - potential[to];
                if reduced < distance[to] {
                    distance[to] = reduced;
                    previous[to] = edge;
                    queue.push(std::cmp::Reverse((reduced, to)));
                }
            }
        }
        if distance[sink] == i64::MAX {
            break;
        }
        // The path's true cost: stop once another unit would lower the gain.
        let true_cost = distance[sink] + potential[sink] - potential[source];
        if true_cost >= 0 {
            break;
        }
        for node in 0..nodes {
            if distance[node] != i64::MAX {
                potential[node] += distance[node];
            }
        }
        let mut node = sink;
        while node != source {
            let edge = previous[node];
            graph.edges[edge].capacity -= 1;
            graph.edges[edge ^ 1].capacity += 1;
            node = graph.edges[edge ^ 1].to;
        }
    }
    let mut pairs = Vec::new();
    for (index, _) in members.iter().enumerate() {
        for &edge in &graph.adjacency[first_member + index] {
            let Edge { to, capacity, .. } = graph.edges[edge];
            // A used member→task edge has its capacity moved to the reverse edge.
            if (first_task..sink).contains(&to) && edge % 2 == 0 && capacity == 0 {
                pairs.push((index, to - first_task));
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gain_of(members: &[Member], pairs: &[(usize, usize)]) -> f64 {
        pairs
            .iter()
            .map(|&(member, task)| {
                members[member]
                    .options
                    .iter()
                    .find(|(t, _)| *t == task)
                    .map_or(0.0, |(_, gain)| *gain)
            })
            .sum()
    }

    #[test]
    fn beats_greedy_and_respects_capacities() {
        // Greedy gives task 0 to member 0 (0.9) and leaves member 1 with
        // nothing (0.8 on task 0 only); optimal is 0→1, 1→0: 0.8 + 0.85.
        let members = vec![
            Member {
                capacity: 1,
                options: vec![(0, 0.9), (1, 0.85)],
            },
            Member {
                capacity: 1,
                options: vec![(0, 0.8)],
            },
        ];
        let pairs = assign(&members, &[1, 1]);
        assert_eq!(pairs.len(), 2);
        assert!((gain_of(&members, &pairs) - 1.65).abs() < 1e-9, "{pairs:?}");
    }

    #[test]
    fn slots_and_capacity_bound_the_assignment() {
        let members: Vec<Member> = (0..3)
            .map(|_| Member {
                capacity: 2,
                options: vec![(0, 0.5), (1, 0.4), (2, 0.3)],
            })
            .collect();
        let pairs = assign(&members, &[2, 1, 3]);
        // 6 units of capacity, 6 slots: all used, task 0 twice, task 1 once.
        assert_eq!(pairs.len(), 6);
        assert_eq!(pairs.iter().filter(|(_, task)| *task == 0).count(), 2);
        assert_eq!(pairs.iter().filter(|(_, task)| *task == 1).count(), 1);
        for member in 0..3 {
            assert_eq!(pairs.iter().filter(|(m, _)| *m == member).count(), 2);
        }
        let mut unique = pairs.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), pairs.len(), "no member twice on a task");
    }

    #[test]
    fn matches_brute_force_on_small_random_cases() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let mut members = Vec::new();
            for _ in 0..3 {
                let capacity = rng.random_range(0..3);
                let mut options = Vec::new();
                for task in 0..3 {
                    if rng.random_bool(0.7) {
                        options.push((task, rng.random_range(0.0..1.0)));
                    }
                }
                members.push(Member { capacity, options });
            }
            let slots: Vec<u32> = (0..3).map(|_| rng.random_range(0..3)).collect();
            let best = brute_force(&members, &slots);
            let found = gain_of(&members, &assign(&members, &slots));
            assert!((best - found).abs() < 1e-5, "best {best}, found {found}");
        }
    }

    /// Tries every subset of (member, task) options.
    fn brute_force(members: &[Member], slots: &[u32]) -> f64 {
        let options: Vec<(usize, usize, f64)> = members
            .iter()
            .enumerate()
            .flat_map(|(m, member)| member.options.iter().map(move |&(t, g)| (m, t, g)))
            .collect();
        let mut best = 0.0_f64;
        for mask in 0u32..(1 << options.len()) {
            let chosen: Vec<_> = options
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, o)| *o)
                .collect();
            let fits_members = members.iter().enumerate().all(|(m, member)| {
                chosen.iter().filter(|o| o.0 == m).count() <= member.capacity as usize
            });
            let fits_tasks = slots
                .iter()
                .enumerate()
                .all(|(t, &free)| chosen.iter().filter(|o| o.1 == t).count() <= free as usize);
            if fits_members && fits_tasks {
                best = best.max(chosen.iter().map(|o| o.2).sum());
            }
        }
        best
    }
}
