//! `cnnlab info`.

/// `cnnlab info`: libtorch's view of the machine.
pub(crate) fn command(json: bool) -> anyhow::Result<()> {
    let info = cnnlab_models::torch_info();
    if json {
        println!("{}", serde_json::to_string(&info)?);
        return Ok(());
    }
    let version = |v: Option<i64>, unit: i64| match v {
        Some(v) => format!("{}.{}.{}", v / (unit * 100), v / unit % 100, v % unit),
        None => "-".to_owned(),
    };
    println!("cnnlab     {}", env!("CARGO_PKG_VERSION"));
    println!("libtorch   {}", info.libtorch);
    println!("threads    {}", info.threads);
    println!("cuda       {}", if info.cuda_available { "available" } else { "not available" });
    println!("cuda rt    {}", version(info.cuda_runtime, 10));
    println!("cudnn      {}", version(info.cudnn, 100));
    for (i, name) in info.devices.iter().enumerate() {
        println!("cuda:{i}     {name}");
    }
    Ok(())
}
