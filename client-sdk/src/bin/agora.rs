//! `agora`: the marketplace from a terminal, thin over `agora_client`.

use agora_client::{report, Client, ClientConfig, Job, ModelRef, Prompt, RunEvent};
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "agora", version, about = "Agora: paid, verified LLM inference from a decentralized marketplace")]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// The chain's WebSocket endpoint.
    #[arg(long, global = true, env = "AGORA_CHAIN_URL", default_value = "ws://127.0.0.1:9944")]
    chain_url: String,
    /// The paying account's secret URI (the default is a development account).
    #[arg(long, global = true, env = "AGORA_ACCOUNT_URI", default_value = "//Eve", hide_default_value = true)]
    account_uri: String,
    /// A GGUF file or a directory of them to tokenise prompts with (default: ~/.cache/agora-models).
    #[arg(long, global = true, env = "AGORA_GGUF")]
    gguf: Vec<PathBuf>,
    /// Print JSON for scripts instead of text for humans.
    #[arg(long, global = true)]
    json: bool,
    /// Where `agora run` keeps each request's prompt and answer for `agora challenge`
    /// (default: ~/.local/share/agora/runs).
    #[arg(long, global = true, env = "AGORA_RUNS_DIR")]
    runs_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a prompt on k providers, stream the answer, then print the receipt.
    Run(RunArgs),
    /// Model releases: history of a family, one release.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Providers and their reputation.
    #[command(subcommand)]
    Providers(ProvidersCommand),
    /// A settled request's receipt.
    Receipt { request: u64 },
    /// Challenge the settled result of one of your requests run with `agora run`: a bond is
    /// held and drawn verifiers re-score the answer. A wrong answer's providers are slashed and
    /// you are repaid; a right one keeps the bond.
    Challenge {
        /// Default: the last request `agora run` kept.
        request: Option<u64>,
    },
    /// Hash a GGUF (with a progress bar) and publish it as a model release.
    Publish {
        gguf: PathBuf,
        #[arg(long)]
        family: String,
        #[arg(long)]
        version: String,
        #[arg(long, default_value = "unknown")]
        license: String,
        /// The release this one derives from (sha256).
        #[arg(long)]
        parent: Option<String>,
        /// Default: the GGUF's own `general.architecture`.
        #[arg(long)]
        architecture: Option<String>,
        /// Default: from the GGUF's own `general.file_type`.
        #[arg(long)]
        quantization: Option<String>,
    },
    /// An OpenAI-compatible HTTP API; every call is paid and verified through the marketplace.
    Gateway {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Providers per call.
        #[arg(short, default_value_t = 3)]
        k: u32,
        /// The most paid to any provider per 1k tokens (default: what the k cheapest ask).
        #[arg(long)]
        max_price: Option<u128>,
        /// The most tokens one call may ask for.
        #[arg(long, default_value_t = 512)]
        max_tokens_limit: u32,
    },
    /// The whole system on this machine: dev chain, the model published, three providers.
    #[command(subcommand)]
    Devnet(DevnetCommand),
}

#[derive(Subcommand)]
enum DevnetCommand {
    /// Start it in the background; returns when every provider is online.
    Up(DevnetArgs),
    /// Stop it.
    Down {
        #[arg(long, default_value = ".devnet", env = "AGORA_DEVNET_DIR")]
        dir: PathBuf,
    },
    /// Run the supervisor in the foreground (what `up` starts in the background).
    #[command(hide = true)]
    Serve(DevnetArgs),
}

#[derive(Args)]
struct DevnetArgs {
    #[arg(long, default_value = ".devnet", env = "AGORA_DEVNET_DIR")]
    dir: PathBuf,
    #[arg(long, default_value_t = 9944, env = "AGORA_DEVNET_PORT")]
    port: u16,
    /// Milliseconds between blocks (transactions also get a block each, at once). Chopsticks
    /// takes about a second of CPU per block here, so much less than 2 s starves everything else.
    #[arg(long, default_value_t = 2000)]
    block_ms: u64,
    /// The GGUF to serve (default: the project's SmolLM2, fetched and checked).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The provider binary (default: `agora-provider` beside this one).
    #[arg(long)]
    provider_binary: Option<PathBuf>,
}

impl DevnetArgs {
    fn config(self) -> Result<agora_client::devnet::DevnetConfig> {
        let model = match self.model {
            Some(m) => m,
            None => {
                let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("the workspace")?;
                eprintln!("fetching the model (SmolLM2-135M-Instruct Q4_1, checked by sha256)...");
                agora_engine::models::fetch_smollm2(root)?
            },
        };
        let provider_binary = match self.provider_binary {
            Some(p) => p,
            None => std::env::current_exe()?.with_file_name("agora-provider"),
        };
        Ok(agora_client::devnet::DevnetConfig {
            dir: self.dir,
            port: self.port,
            block_time: std::time::Duration::from_millis(self.block_ms.max(100)),
            provider_binary,
            model,
        })
    }
}

#[derive(Args)]
struct RunArgs {
    /// `family`, `family:version` or a release's sha256.
    #[arg(long, short)]
    model: String,
    /// Independent providers to run it (the assurance level).
    #[arg(short, default_value_t = 3)]
    k: u32,
    #[arg(long, default_value_t = 64)]
    max_tokens: u32,
    /// The most paid to any provider per 1k tokens (default: what the k cheapest ask).
    #[arg(long)]
    max_price: Option<u128>,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    #[arg(long, default_value_t = 0)]
    top_k: u32,
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Send the prompt as raw text instead of a user turn in the model's chat template.
    #[arg(long)]
    raw: bool,
    prompt: String,
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Every release of a family, oldest first.
    History { family: String },
    /// One release, by sha256 (or family[:version]).
    Show { model: String },
}

#[derive(Subcommand)]
enum ProvidersCommand {
    /// Registered providers, best reputation first.
    Ls {
        /// Only the providers of this model.
        #[arg(long)]
        model: Option<String>,
    },
}

fn milli(value: f64, what: &str) -> Result<u32> {
    anyhow::ensure!(value.is_finite() && (0.0..=100.0).contains(&value), "{what} must be between 0 and 100");
    Ok((value * 1000.0).round() as u32)
}

async fn client(global: &Global) -> Result<Client> {
    let mut config = ClientConfig::new(&global.chain_url, agora_client::account_from_uri(&global.account_uri)?);
    if !global.gguf.is_empty() {
        config.model_files = global.gguf.clone();
    }
    Client::connect(config).await.with_context(|| format!("connecting to {}", global.chain_url))
}

async fn run(global: &Global, args: RunArgs) -> Result<()> {
    let model: ModelRef = args.model.parse()?;
    let prompt = if args.raw {
        Prompt::Text(args.prompt)
    } else {
        Prompt::Chat(vec![agora_client::ChatTurn { role: "user".into(), content: args.prompt }])
    };
    let mut job = Job::new(model, prompt);
    job.k = args.k;
    job.max_tokens = args.max_tokens;
    job.max_price_per_1k = args.max_price;
    job.sampling.temperature_milli = milli(args.temperature, "--temperature")?;
    job.sampling.top_k = args.top_k;
    job.sampling.top_p_milli = milli(args.top_p, "--top-p")?.min(1000);
    let client = client(global).await?;
    let json = global.json;
    let result = client
        .run(&job, |event| {
            if json {
                return;
            }
            match event {
                RunEvent::Escrowed { request, escrow } => eprintln!("request {request}: {escrow} escrowed"),
                RunEvent::Assigned { providers, .. } => eprintln!("assigned to {} providers", providers.len()),
                RunEvent::Token { piece, .. } => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&piece);
                    let _ = out.flush();
                },
                RunEvent::ProviderFinished(report) => {
                    if let Some(why) = &report.failure {
                        eprintln!("\nprovider {} gave no answer: {why}", report.provider);
                    }
                },
                RunEvent::Settled(_) => {},
                RunEvent::Disputed { request, cause } => {
                    eprintln!("\nrequest {request} went to verifiers ({}); bringing them the answers and waiting for their verdict", cause.name())
                },
            }
        })
        .await?;
    if let Err(e) = RunRecord::save(&runs_dir(global.runs_dir.clone()), &result) {
        eprintln!("warning: cannot keep the answer for a later challenge: {e:#}");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report::run_result(&result))?);
        return Ok(());
    }
    println!();
    if result.stream_corrected {
        println!("(the first provider to answer was outvoted; the majority answer is)\n{}", result.text);
    }
    println!("\n{} of {} providers agreed; verified against the receipt: {}", result.agreeing, result.providers.len(), if result.verified { "yes" } else { "NO" });
    if let Some(dispute) = &result.dispute {
        print!("{}", report::dispute_lines(dispute));
    }
    match &result.receipt {
        Some(receipt) => print!("{}", report::receipt_lines(receipt)),
        None => println!("request {} is {:?}: no receipt", result.request, result.status),
    }
    Ok(())
}

/// What `agora run` keeps of a request so that `agora challenge` can bring it to verifiers.
#[derive(serde::Serialize, serde::Deserialize)]
struct RunRecord {
    request: u64,
    prompt: Vec<u32>,
    output: Vec<u32>,
}

fn runs_dir(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        home.join(".local/share/agora/runs")
    })
}

impl RunRecord {
    fn path(dir: &std::path::Path, request: u64) -> PathBuf {
        dir.join(format!("{request}.json"))
    }

    fn save(dir: &std::path::Path, result: &agora_client::RunResult) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        let record = RunRecord { request: result.request, prompt: result.prompt.clone(), output: result.tokens.clone() };
        std::fs::write(Self::path(dir, result.request), serde_json::to_vec(&record)?)?;
        Ok(())
    }

    /// The run kept for `request`, or the last one kept.
    fn load(dir: &std::path::Path, request: Option<u64>) -> Result<RunRecord> {
        let request = match request {
            Some(request) => request,
            None => Self::last(dir)?,
        };
        let path = Self::path(dir, request);
        let bytes = std::fs::read(&path).with_context(|| format!("no answer of request {request} was kept at {} (only requests run from here with `agora run` can be challenged)", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("{} is not a kept answer", path.display()))
    }

    fn last(dir: &std::path::Path) -> Result<u64> {
        let kept = std::fs::read_dir(dir).with_context(|| format!("no run was kept in {}", dir.display()))?;
        let newest = kept
            .flatten()
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path().file_stem()?.to_str()?.parse::<u64>().ok()?)))
            .max();
        newest.map(|(_, request)| request).with_context(|| format!("no run was kept in {}", dir.display()))
    }
}

async fn challenge(global: &Global, request: Option<u64>) -> Result<()> {
    let record = RunRecord::load(&runs_dir(global.runs_dir.clone()), request)?;
    let request = record.request;
    let client = client(global).await?;
    eprintln!("challenging request {request}: holding the bond, bringing the answer to the drawn verifiers...");
    let report = client.challenge(request, &record.prompt, &record.output).await?;
    print_json_or(global.json, report::dispute(&report), || {
        print!("{}", report::dispute_lines(&report));
        println!(
            "{}",
            if report.upheld() {
                "challenge upheld: the providers were slashed and you were repaid; the bond is back"
            } else if report.resolution.decided.0.is_empty() {
                "no verifier judged the answer: nothing changed and the bond is back"
            } else {
                "challenge rejected: the verifiers accepted the answer; the bond went to the treasury"
            }
        );
    })
}

fn print_json_or(json: bool, value: serde_json::Value, human: impl FnOnce()) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        human();
    }
    Ok(())
}

async fn main_async(cli: Cli) -> Result<()> {
    let global = &cli.global;
    match cli.command {
        Command::Run(args) => run(global, args).await,
        Command::Models(ModelsCommand::History { family }) => {
            let history = client(global).await?.history(&family).await?;
            let value = serde_json::Value::Array(history.iter().map(report::release).collect());
            print_json_or(global.json, value.clone(), || {
                for r in value.as_array().into_iter().flatten() {
                    println!(
                        "{}  {:<10} {:<11} block {:<6} {}{}",
                        r["sha256"].as_str().unwrap_or_default(),
                        r["version"].as_str().unwrap_or_default(),
                        r["status"].as_str().unwrap_or_default(),
                        r["published_at"],
                        r["quantization"].as_str().unwrap_or_default(),
                        r["parent"].as_str().map(|p| format!("  parent {p}")).unwrap_or_default(),
                    );
                }
            })
        },
        Command::Models(ModelsCommand::Show { model }) => {
            let release = client(global).await?.release(&model.parse()?).await?;
            let value = report::release(&release);
            print_json_or(global.json, value.clone(), || {
                for (key, v) in value.as_object().into_iter().flatten() {
                    println!("{key:<18} {}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
                }
            })
        },
        Command::Providers(ProvidersCommand::Ls { model }) => {
            let client = client(global).await?;
            let release = match model {
                Some(m) => Some(client.release(&m.parse()?).await?.info.sha256),
                None => None,
            };
            let providers = client.providers(release).await?;
            let value = serde_json::Value::Array(providers.iter().map(|(who, r)| report::provider(who, r)).collect());
            print_json_or(global.json, value.clone(), || {
                for p in value.as_array().into_iter().flatten() {
                    println!(
                        "{}  {:<8} reputation {:>7} ppm  price in/out {}/{} per 1k  stake {}",
                        p["account"].as_str().unwrap_or_default(),
                        p["status"].as_str().unwrap_or_default(),
                        p["reputation_ppm"],
                        p["price_per_1k_input"].as_str().unwrap_or_default(),
                        p["price_per_1k_output"].as_str().unwrap_or_default(),
                        p["stake"].as_str().unwrap_or_default(),
                    );
                }
            })
        },
        Command::Gateway { listen, k, max_price, max_tokens_limit } => {
            let client = std::sync::Arc::new(client(global).await?);
            let config = agora_client::gateway::GatewayConfig { k, max_price_per_1k: max_price, max_tokens_limit, ..Default::default() };
            let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
            eprintln!("OpenAI-compatible gateway on http://{}/v1 (k = {k})", listener.local_addr()?);
            agora_client::gateway::serve(listener, client, config).await?;
            Ok(())
        },
        Command::Devnet(DevnetCommand::Up(args)) => {
            let config = args.config()?;
            eprintln!("starting the devnet (chain, three providers; the first start builds and installs for a while)...");
            let state = tokio::task::spawn_blocking(move || agora_client::devnet::up(&config, &std::env::current_exe()?)).await??;
            print_json_or(global.json, serde_json::to_value(&state)?, || {
                println!("devnet ready: chain at {}", state.chain_url);
                for p in &state.providers {
                    println!("  provider {:<8} {}  {}  log {}", p.name, p.account, p.listen, p.log.display());
                }
                println!("try: agora run --model smollm2-135m-instruct \"What is the capital of France?\"");
                println!("stop it with: agora devnet down");
            })
        },
        Command::Devnet(DevnetCommand::Down { dir }) => {
            let stopped = agora_client::devnet::down(&dir)?;
            println!("{}", if stopped { "devnet stopped" } else { "no devnet running here" });
            Ok(())
        },
        Command::Devnet(DevnetCommand::Serve(args)) => agora_client::devnet::serve(args.config()?).await,
        Command::Publish { gguf, family, version, license, parent, architecture, quantization } => {
            let parent = match parent.map(|p| p.parse::<ModelRef>()).transpose()? {
                Some(ModelRef::Release(hash)) => Some(hash),
                Some(other) => anyhow::bail!("--parent takes a release's sha256, not {other}"),
                None => None,
            };
            let meta = agora_client::ReleaseMeta { family, version, license, parent, architecture, quantization, ..Default::default() };
            let release = client(global).await?.publish(&gguf, meta).await?;
            let value = report::release(&release);
            print_json_or(global.json, value.clone(), || {
                println!("published {} {} as {}", value["family"].as_str().unwrap_or_default(), value["version"].as_str().unwrap_or_default(), value["sha256"].as_str().unwrap_or_default());
            })
        },
        Command::Challenge { request } => challenge(global, request).await,
        Command::Receipt { request } => {
            let receipt = client(global).await?.receipt(request).await?;
            print_json_or(global.json, report::receipt(&receipt), || print!("{}", report::receipt_lines(&receipt)))
        },
    }
}

fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,llama_cpp_2=off,libp2p_kad=error"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    if let Err(e) = runtime.block_on(main_async(cli)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
