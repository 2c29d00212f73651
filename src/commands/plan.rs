//! `flow plan FILE`

use flow_engine::plan::PlanNode;
use flow_engine::Plan;

use super::load;
use crate::cli::{Format, PlanArgs};
use crate::errors::CliError;

/// Prints the plan a run would execute.
pub fn plan(args: PlanArgs) -> Result<i32, CliError> {
    let workflow = load(&args.workflow, &args.tuning)?;
    let plan = Plan::naive(&workflow);
    if args.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&plan).unwrap_or_default()
        );
        return Ok(0);
    }
    println!(
        "plan of `{}` ({} stages):",
        workflow.spec.name,
        workflow.stages.len()
    );
    for (i, node) in plan.nodes.iter().enumerate() {
        let line = match node {
            PlanNode::Load { model, device, .. } => format!("load     {model} on {device}"),
            PlanNode::Run {
                stage,
                device,
                batch,
            } => {
                let s = &workflow.stages[*stage];
                format!(
                    "run      {} ({}) on {device}, batch {batch}",
                    s.id, s.spec.uses
                )
            }
            PlanNode::Unload { model, device, .. } => format!("unload   {model} from {device}"),
            PlanNode::ClearCache { device } => format!("clear    cache of {device}"),
        };
        println!("{:>3}. {line}", i + 1);
    }
    let loads = plan
        .nodes
        .iter()
        .filter(|n| matches!(n, PlanNode::Load { .. }))
        .count();
    println!("model loads: {loads}");
    Ok(0)
}
