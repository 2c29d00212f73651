//! `flow plan FILE`: the plan a run would execute, with predicted memory.

use flow_engine::memory::human;
use flow_engine::plan::{DevicePlan, PlanNode, Step};
use flow_engine::planner::{batch_range, chart};
use flow_engine::{Plan, Workflow};

use super::{load, make_plan};
use crate::cli::{Format, PlanArgs};
use crate::errors::CliError;
use crate::locate;

/// Prints the plan a run would execute.
pub fn plan(args: PlanArgs) -> Result<i32, CliError> {
    let workflow = load(&args.workflow, &args.tuning)?;
    let items = flow_engine::items::discover(&workflow.spec.inputs, &workflow.dir)
        .map(|i| i.len())
        .unwrap_or(0);
    let state_dir = locate::state_dir_of(&args.workflow);
    let (plan, _) = make_plan(&workflow, &state_dir, items)?;
    if let Some(path) = &args.chart {
        std::fs::write(path, chart::svg(&plan, &workflow))
            .map_err(|e| CliError::Message(format!("cannot write `{}`: {e}", path.display())))?;
    }
    if args.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&plan).unwrap_or_default()
        );
        return Ok(0);
    }
    print_text(&plan, &workflow);
    if let Some(path) = &args.chart {
        println!("memory chart: {}", path.display());
    }
    Ok(0)
}

fn print_text(plan: &Plan, workflow: &Workflow) {
    let waves = match plan.wave_size {
        Some(w) => match plan.waves() {
            1 => format!("1 wave of up to {w} items; more items run in more waves"),
            n => format!("{n} waves of up to {w} items"),
        },
        None => "one wave".into(),
    };
    println!(
        "plan of `{}` for {} items ({waves}):\n",
        workflow.spec.name, plan.items
    );
    println!("devices:");
    for d in &plan.devices {
        println!(
            "  {:<7} {:<28} total {:>9}  budget {:>9}  peak {:>9} ({:.0} % of budget){}",
            d.device.to_string(),
            d.name,
            human(d.total),
            human(d.budget),
            human(d.peak),
            percent(d.peak, d.budget),
            if d.all_resident {
                ""
            } else {
                "  models swap in waves"
            }
        );
    }
    println!("\nstages:");
    for (i, p) in plan.placements.iter().enumerate() {
        let stage = &workflow.stages[i];
        let (min, max) = batch_range(workflow, i);
        let range = if min == max {
            String::new()
        } else {
            format!(" ({min}..{max})")
        };
        let fp = &p.footprint;
        let memory = if fp.weights + fp.per_item + fp.fixed == 0 {
            "no device memory declared".to_string()
        } else {
            format!(
                "{} weights + {}/item",
                human(fp.weights),
                human(fp.per_item)
            )
        };
        println!(
            "  {:<16} {:<6} batch {:>3}{range:<9} {memory:<34} {}{}",
            stage.id.as_str(),
            p.device.to_string(),
            p.batch,
            p.why,
            if p.standby { " (fallback only)" } else { "" }
        );
    }
    for d in &plan.devices {
        print_steps(d, workflow);
    }
    println!(
        "\nmodel loads: {} for {} items (loading and unloading every model for every item: {})",
        plan.loads, plan.items, plan.naive_loads
    );
}

fn print_steps(d: &DevicePlan, workflow: &Workflow) {
    let title = if d.repeat.is_empty() {
        format!("\nsteps on {}:", d.device)
    } else {
        format!("\nsteps on {}, first wave:", d.device)
    };
    println!("{title}");
    let mut n = 0;
    for step in &d.first {
        n += 1;
        print_step(n, step, workflow);
    }
    if !d.repeat.is_empty() {
        println!("  each later wave:");
        for step in &d.repeat {
            n += 1;
            print_step(n, step, workflow);
        }
    }
}

fn print_step(n: usize, step: &Step, workflow: &Workflow) {
    let line = match &step.node {
        PlanNode::Load { model, .. } => format!("load    {model}"),
        PlanNode::Run { stage, batch, .. } => {
            let s = &workflow.stages[*stage];
            format!("run     {} ({}), batch {batch}", s.id, s.spec.uses)
        }
        PlanNode::Unload { model, .. } => format!("unload  {model}"),
        PlanNode::ClearCache { .. } => "clear   cache".to_string(),
    };
    let memory = if step.peak > step.before.max(step.after) {
        format!(
            "{:>9} → peak {:>9} → {:>9}",
            human(step.before),
            human(step.peak),
            human(step.after)
        )
    } else {
        format!("{:>9} → {:>9}", human(step.before), human(step.after))
    };
    println!("  {n:>3}. {line:<44} {memory}");
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}
