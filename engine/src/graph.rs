//! The workflow as a DAG of stages (petgraph), in topological order.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::path::PathBuf;
use std::sync::Arc;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::diag::ConfigError;
use crate::ident::Ident;
use crate::registry::{Ports, Registry, StageKind};
use crate::spec::typed::node_at;
use crate::spec::yaml::Node;
use crate::spec::{StageSpec, WorkflowSpec};

/// A validated workflow, ready to plan.
#[derive(Clone)]
pub struct Workflow {
    /// The workflow as written (after `--set` overrides).
    pub spec: WorkflowSpec,
    /// The workflow file, absolute.
    pub path: PathBuf,
    /// The folder of the workflow file.
    pub dir: PathBuf,
    /// The stages in topological order (ties keep file order).
    pub stages: Vec<StageNode>,
    /// The DAG: node weights index `stages`; edges go upstream → downstream.
    pub graph: DiGraph<usize, ()>,
}

/// One stage of a validated workflow.
#[derive(Clone)]
pub struct StageNode {
    /// The stage id.
    pub id: Ident,
    /// The stage as written.
    pub spec: StageSpec,
    /// Its kind.
    pub kind: Arc<dyn StageKind>,
    /// Its typed ports.
    pub ports: Ports,
    /// Indices (into `Workflow::stages`) of the stages it needs.
    pub needs: Vec<usize>,
}

/// A stage as the graph checks see it.
pub struct GraphStage<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its `needs`.
    pub needs: Vec<&'a str>,
    /// Its ports, when its kind is known.
    pub ports: Option<Ports>,
}

/// Checks for cycles and port type mismatches between connected stages.
pub fn check(stages: &[GraphStage<'_>], root: &Node, errors: &mut Vec<ConfigError>) {
    let index = |id: &str| stages.iter().position(|s| s.id == id);
    let mut graph = DiGraph::<usize, ()>::new();
    let nodes: Vec<NodeIndex> = (0..stages.len()).map(|i| graph.add_node(i)).collect();
    for (i, stage) in stages.iter().enumerate() {
        for need in &stage.needs {
            if let Some(j) = index(need).filter(|j| *j != i) {
                graph.add_edge(nodes[j], nodes[i], ());
            }
        }
    }
    for scc in tarjan_scc(&graph) {
        if scc.len() < 2 {
            continue;
        }
        let members: BTreeSet<usize> = scc.iter().map(|n| graph[*n]).collect();
        let chain = cycle_chain(stages, &members);
        let first = chain[0];
        let span = node_at(
            root,
            &["stages".into(), stages[first].id.into(), "needs".into()],
        )
        .span;
        let names: Vec<&str> = chain.iter().map(|i| stages[*i].id).collect();
        errors.push(
            ConfigError::new(
                "flow::cycle",
                format!(
                    "cyclic dependency detected in the chain [ {} ]",
                    names.join(" -> ")
                ),
            )
            .at(span, "part of the cycle")
            .help("stages must form a DAG: remove one of these `needs`"),
        );
    }
    for stage in stages {
        check_ports(stages, stage, root, errors);
    }
}

/// A cycle through `members`, upstream → downstream, closed on its start.
fn cycle_chain(stages: &[GraphStage<'_>], members: &BTreeSet<usize>) -> Vec<usize> {
    let start = *members.iter().next().unwrap_or(&0);
    let mut chain = vec![start];
    let mut current = start;
    // Walk downstream: a member whose `needs` contains the current stage.
    for _ in 0..=members.len() {
        let next = members.iter().copied().find(|m| {
            stages[*m].needs.contains(&stages[current].id) && (!chain.contains(m) || *m == start)
        });
        match next {
            Some(n) => {
                chain.push(n);
                if n == start {
                    break;
                }
                current = n;
            }
            None => break,
        }
    }
    chain
}

fn check_ports(
    stages: &[GraphStage<'_>],
    stage: &GraphStage<'_>,
    root: &Node,
    errors: &mut Vec<ConfigError>,
) {
    let Some(ports) = &stage.ports else { return };
    let upstream: Vec<&GraphStage<'_>> = stage
        .needs
        .iter()
        .filter_map(|n| stages.iter().find(|s| s.id == *n))
        .collect();
    if upstream.iter().any(|u| u.ports.is_none()) {
        return;
    }
    for wanted in &ports.inputs {
        let satisfied = stage.needs.contains(&wanted.as_str())
            || upstream
                .iter()
                .any(|u| u.ports.as_ref().is_some_and(|p| p.outputs.contains(wanted)));
        if satisfied {
            continue;
        }
        let produced: Vec<String> = upstream
            .iter()
            .flat_map(|u| {
                u.ports
                    .iter()
                    .flat_map(|p| p.outputs.iter())
                    .map(move |o| format!("`{o}` ({})", u.id))
            })
            .collect();
        let key = if stage.needs.is_empty() {
            "uses"
        } else {
            "needs"
        };
        let span = node_at(root, &["stages".into(), stage.id.into(), key.into()]).span;
        let found = if produced.is_empty() {
            "nothing upstream produces it".to_string()
        } else {
            format!("its upstream produces {}", produced.join(", "))
        };
        errors.push(
            ConfigError::new(
                "flow::port_mismatch",
                format!("stage `{}` needs input of type `{wanted}`, but {found}", stage.id),
            )
            .at(span, format!("no `{wanted}` here"))
            .help(format!("add a stage that produces `{wanted}` to `needs` (`flow stages` lists each kind's ports)")),
        );
    }
}

impl Workflow {
    /// Where the weights of `stage`'s `model:` are (see
    /// [`crate::memory::weights::model_dir`]); `None` without a model.
    pub fn model_dir(&self, stage: &StageSpec) -> Option<PathBuf> {
        let name = stage.model.as_ref()?;
        let model = self.spec.models.get(name)?;
        crate::memory::weights::model_dir(model, &self.dir)
    }

    /// Builds the DAG of a workflow that passed every check.
    pub fn new(spec: WorkflowSpec, path: PathBuf, registry: &Registry) -> Self {
        let dir = path.parent().map(PathBuf::from).unwrap_or_default();
        let ids: Vec<&Ident> = spec.stages.keys().collect();
        let file_index = |id: &str| {
            ids.iter()
                .position(|i| i.as_str() == id)
                .unwrap_or(usize::MAX)
        };
        // Kahn's algorithm; ties go to the stage written first.
        let mut remaining: Vec<usize> = spec.stages.values().map(|s| s.needs.len()).collect();
        let mut ready: BinaryHeap<Reverse<usize>> = remaining
            .iter()
            .enumerate()
            .filter(|(_, n)| **n == 0)
            .map(|(i, _)| Reverse(i))
            .collect();
        let mut order = Vec::new();
        while let Some(Reverse(i)) = ready.pop() {
            order.push(i);
            for (j, stage) in spec.stages.values().enumerate() {
                if stage.needs.iter().any(|n| n.as_str() == ids[i].as_str()) {
                    remaining[j] -= 1;
                    if remaining[j] == 0 {
                        ready.push(Reverse(j));
                    }
                }
            }
        }
        let position = |file_i: usize| order.iter().position(|o| *o == file_i).unwrap_or(0);
        let mut stages = Vec::new();
        for &i in &order {
            let (id, stage) = spec.stages.get_index(i).expect("index from enumerate");
            let kind = registry.get(&stage.uses).expect("validated kind").clone();
            stages.push(StageNode {
                id: id.clone(),
                ports: kind.ports(&stage.config),
                needs: stage
                    .needs
                    .iter()
                    .map(|n| position(file_index(n.as_str())))
                    .collect(),
                spec: stage.clone(),
                kind,
            });
        }
        let mut graph = DiGraph::new();
        let nodes: Vec<NodeIndex> = (0..stages.len()).map(|i| graph.add_node(i)).collect();
        for (i, stage) in stages.iter().enumerate() {
            for &j in &stage.needs {
                graph.add_edge(nodes[j], nodes[i], ());
            }
        }
        Self {
            spec,
            path,
            dir,
            stages,
            graph,
        }
    }

    /// The index of stage `id` in topological order.
    pub fn stage_index(&self, id: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.id.as_str() == id)
    }
}
