//! A classification report from a CSV of labels and scores, the first program a
//! scikit-learn user writes:
//!
//! ```sh
//! cargo run --example report_from_csv -- examples/predictions.csv
//! ```
//!
//! The CSV has a header; `y_true` and `y_pred` hold class names (any text), and optional
//! `p_<class>` columns hold each class's probability.

use cnnlab_metrics::{average_precision_ovr, cohen_kappa_score, encode_labels, roc_auc_ovr, KappaWeights, Report};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: report_from_csv FILE.csv")?;
    let text = std::fs::read_to_string(&path)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().ok_or("empty file")?.split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).ok_or(format!("no `{name}` column"));
    let (t, p) = (column("y_true")?, column("y_pred")?);
    let prob_columns: Vec<(usize, &str)> =
        header.iter().enumerate().filter_map(|(i, h)| h.strip_prefix("p_").map(|c| (i, c))).collect();
    let (mut y_true, mut y_pred, mut probs) = (Vec::new(), Vec::new(), Vec::new());
    for (n, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let cell = |i: usize| cells.get(i).copied().ok_or(format!("line {}: too few cells", n + 2));
        y_true.push(cell(t)?.to_owned());
        y_pred.push(cell(p)?.to_owned());
        for &(i, _) in &prob_columns {
            probs.push(cell(i)?.parse::<f64>().map_err(|e| format!("line {}: {e}", n + 2))?);
        }
    }
    let labels = encode_labels(&y_true, &y_pred);
    // The probability columns, reordered to the sorted class order.
    let scores = (!prob_columns.is_empty()).then(|| {
        let k = prob_columns.len();
        let order: Vec<usize> = labels
            .classes
            .iter()
            .map(|c| prob_columns.iter().position(|(_, name)| name == c).expect("a p_ column per class"))
            .collect();
        probs.chunks(k).flat_map(|row| order.iter().map(|&j| row[j]).collect::<Vec<_>>()).collect::<Vec<f64>>()
    });
    let report = Report::new(&labels.y_true, &labels.y_pred, scores.as_deref(), &labels.classes)?;
    println!("{}", report.text());
    println!("MCC                {:.4}", report.mcc);
    let kappa = cohen_kappa_score(&labels.y_true, &labels.y_pred, KappaWeights::None)?;
    println!("Cohen's kappa      {kappa:.4}");
    if let Some(s) = &scores {
        let k = labels.classes.len();
        println!("ROC AUC (ovr)      {:.4}", roc_auc_ovr(&labels.y_true, s, k)?.macro_avg);
        println!("average precision  {:.4}", average_precision_ovr(&labels.y_true, s, k)?.macro_avg);
        if let Some(loss) = report.log_loss {
            println!("log loss           {loss:.4}");
        }
    }
    Ok(())
}
