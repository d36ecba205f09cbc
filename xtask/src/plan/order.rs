//! Which images a command works on, and in which order: the named ones and what they are
//! built on, parents first; the order builds start in; and the groups that can build on
//! separate runners. Pure.

use super::Build;
use crate::model::inventory::{Image, Inventory};

/// The named images (all when none are named) plus everything they depend on, parents first.
/// Ties are broken by name so the order is stable.
pub fn select<'a>(inventory: &'a Inventory, names: &[String]) -> anyhow::Result<Vec<&'a Image>> {
    let roots: Vec<&Image> = if names.is_empty() {
        inventory.images.values().collect()
    } else {
        names.iter().map(|n| inventory.image(n)).collect::<anyhow::Result<_>>()?
    };
    let mut ordered = Vec::new();
    let mut seen = Vec::new();
    for root in roots {
        visit(inventory, root, &mut seen, &mut ordered);
    }
    Ok(ordered)
}

// The inventory has been checked for cycles and unknown parents, so a plain DFS terminates.
fn visit<'a>(inventory: &'a Inventory, image: &'a Image, seen: &mut Vec<&'a str>, out: &mut Vec<&'a Image>) {
    if seen.contains(&image.name.as_str()) {
        return;
    }
    seen.push(&image.name);
    let mut parents: Vec<&String> = image.depends_on.iter().collect();
    parents.sort();
    for parent in parents {
        if let Some(p) = inventory.images.get(parent) {
            visit(inventory, p, seen, out);
        }
    }
    out.push(image);
}

/// Images that can build on separate runners: the groups of the selection connected by
/// depends_on (each with the parents it is built on), in dependency order within a group.
pub fn runner_groups<'a>(inventory: &'a Inventory, names: &[String]) -> anyhow::Result<Vec<Vec<&'a Image>>> {
    let selected = select(inventory, names)?;
    let mut groups: Vec<Vec<&Image>> = Vec::new();
    for image in selected {
        // Parents come first in `selected`, so a parent's group already exists.
        let joined: Vec<usize> = (0..groups.len())
            .filter(|&g| groups[g].iter().any(|i| image.depends_on.contains(&i.name)))
            .collect();
        match joined.split_first() {
            None => groups.push(vec![image]),
            Some((&first, rest)) => {
                for &g in rest.iter().rev() {
                    let moved = groups.remove(g);
                    groups[first].extend(moved);
                }
                groups[first].push(image);
            }
        }
    }
    Ok(groups)
}

/// The order in which ready builds start: the one with the longest chain of builds waiting on
/// it first, so the graph's critical path never queues behind images nothing is built on (with
/// fewer jobs than ready images, plan order alone can cost a whole extra round of builds).
pub fn longest_chain_first(steps: &[Build]) -> Vec<usize> {
    // Steps come in dependency order, so walking backwards meets every step after all the steps
    // built on it.
    let mut chain = vec![1; steps.len()];
    for i in (0..steps.len()).rev() {
        for parent in &steps[i].needs {
            if let Some(p) = steps.iter().position(|s| &s.image == parent) {
                chain[p] = chain[p].max(chain[i] + 1);
            }
        }
    }
    let mut order: Vec<usize> = (0..steps.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(chain[i]), i));
    order
}

/// The order one job builds `steps` in: each time, the first of `longest_chain_first` whose
/// parents are built. What a dry run lists, so it matches a run with `--jobs 1`.
pub fn one_at_a_time(steps: &[Build]) -> Vec<usize> {
    let priority = longest_chain_first(steps);
    let mut done: Vec<usize> = Vec::new();
    while done.len() < steps.len() {
        let ready = priority.iter().copied().find(|&i| {
            !done.contains(&i)
                && steps[i].needs.iter().all(|parent| {
                    steps.iter().position(|s| &s.image == parent).is_none_or(|p| done.contains(&p))
                })
        });
        // Parents outside `steps` count as built; a cycle cannot reach a plan.
        done.push(ready.unwrap_or_else(|| (0..steps.len()).find(|i| !done.contains(i)).unwrap_or(0)));
    }
    done
}
