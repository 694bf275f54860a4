//! The systems under test and how each is built and started as a child process with the same
//! arguments: `--guarantee --bootstrap --output --app-id --state-dir --commit-ms`, plus what it
//! runs: `--workload --input` (PEERS.md) or `--query --person --auction --bid` (NEXMARK.md).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{bail, Context as _, Result};
use benches::failover::Instance;
use benches::nexmark::{Query, Topics};
use benches::Guarantee;
use clap::ValueEnum;

use crate::workload::Workload;

/// A system under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum)]
pub enum System {
    /// Apache Kafka Streams (Java), `benches/peers/kafka-streams`.
    KafkaStreams,
    /// Quix Streams (Python), `benches/peers/quix`.
    Quix,
    /// streamlib, as `peers app --system streamlib`.
    Streamlib,
    /// The raw rdkafka consume → produce loop, as `peers app --system ceiling`.
    Ceiling,
}

impl System {
    /// Name in tables, JSON, flags and topic names.
    pub fn name(self) -> &'static str {
        match self {
            Self::KafkaStreams => "kafka-streams",
            Self::Quix => "quix",
            Self::Streamlib => "streamlib",
            Self::Ceiling => "ceiling",
        }
    }

    /// Name for people.
    pub fn label(self) -> &'static str {
        match self {
            Self::KafkaStreams => "Kafka Streams",
            Self::Quix => "Quix Streams",
            Self::Streamlib => "streamlib",
            Self::Ceiling => "rdkafka ceiling",
        }
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a system under test runs.
#[derive(Clone, Copy, Debug)]
pub enum Program<'a> {
    /// A workload of PEERS.md over one input topic.
    Workload {
        /// The workload.
        workload: Workload,
        /// Its input topic.
        input: &'a str,
    },
    /// A Nexmark query over the three Nexmark topics (NEXMARK.md).
    Nexmark {
        /// The query.
        query: Query,
        /// Its input topics.
        topics: &'a Topics,
        /// How long a task waits for an empty input partition read to its end, ms (Kafka
        /// Streams' `max.task.idle.ms`, streamlib's `max_task_idle_caught_up`).
        task_idle_ms: u64,
    },
}

/// The arguments every system under test takes.
pub struct ChildArgs<'a> {
    /// What to run.
    pub program: Program<'a>,
    /// Processing guarantee.
    pub guarantee: Guarantee,
    /// Kafka bootstrap servers.
    pub bootstrap: &'a str,
    /// Output topic (exists).
    pub output: &'a str,
    /// Application id / consumer group; every internal topic name contains it.
    pub app_id: &'a str,
    /// Where the system keeps local state.
    pub state_dir: &'a Path,
    /// Commit interval, ms.
    pub commit_ms: u64,
    /// Stream threads (not passed to Quix Streams, which has none).
    pub threads: usize,
}

impl ChildArgs<'_> {
    /// As command-line arguments.
    fn to_args(&self) -> Vec<String> {
        let program = match self.program {
            Program::Workload { workload, input } => vec![
                ("--workload", workload.name().to_string()),
                ("--input", input.to_string()),
            ],
            Program::Nexmark {
                query,
                topics,
                task_idle_ms,
            } => vec![
                ("--query", query.name().to_string()),
                ("--person", topics.person.clone()),
                ("--auction", topics.auction.clone()),
                ("--bid", topics.bid.clone()),
                ("--task-idle-ms", task_idle_ms.to_string()),
            ],
        };
        program
            .into_iter()
            .chain([
                ("--guarantee", self.guarantee.name().to_string()),
                ("--bootstrap", self.bootstrap.to_string()),
                ("--output", self.output.to_string()),
                ("--app-id", self.app_id.to_string()),
                ("--state-dir", self.state_dir.display().to_string()),
                ("--commit-ms", self.commit_ms.to_string()),
            ])
            .flat_map(|(flag, value)| [flag.to_string(), value])
            .collect()
    }
}

/// How to start each system; [`Launchers::prepare`] builds what needs building.
pub struct Launchers {
    /// This executable (runs streamlib and the ceiling).
    exe: PathBuf,
    /// `java` options, e.g. the heap size.
    jvm_opts: Vec<String>,
    /// Classpath of the Kafka Streams peer.
    java_classpath: String,
    /// The Quix virtual environment's interpreter.
    python: PathBuf,
    /// The Quix peer script.
    quix_script: PathBuf,
    /// Versions of the tools and libraries the peers run on, for the results.
    pub versions: Vec<(String, String)>,
}

impl Launchers {
    /// Builds the Kafka Streams peer (Maven) and the Quix virtual environment when `systems`
    /// include them and they are missing or stale.
    pub fn prepare(systems: &[System], peers_dir: &Path, jvm_opts: &str) -> Result<Self> {
        let mut launchers = Self {
            exe: std::env::current_exe().context("locating this executable")?,
            jvm_opts: jvm_opts.split_whitespace().map(String::from).collect(),
            java_classpath: String::new(),
            python: PathBuf::new(),
            quix_script: peers_dir.join("quix/peer.py"),
            versions: Vec::new(),
        };
        if systems.contains(&System::KafkaStreams) {
            let project = peers_dir.join("kafka-streams");
            build_kafka_streams(&project)?;
            let target = project.join("target");
            launchers.java_classpath = format!(
                "{}:{}/*",
                target.join("classes").display(),
                target.join("lib").display()
            );
            launchers
                .versions
                .push(("java".into(), tool_version("java", &["-version"])?));
            launchers.versions.push((
                "kafka-streams".into(),
                jar_version(&target, "kafka-streams-")?,
            ));
        }
        if systems.contains(&System::Quix) {
            launchers.python = quix_venv(&peers_dir.join("quix/requirements.txt"))?;
            let python = launchers.python.display().to_string();
            launchers
                .versions
                .push(("python".into(), tool_version(&python, &["--version"])?));
            let quix = tool_version(
                &python,
                &["-c", "import quixstreams; print(quixstreams.__version__)"],
            )?;
            launchers.versions.push(("quixstreams".into(), quix));
        }
        Ok(launchers)
    }

    /// The command that runs `system` with `args`; Nexmark runs on Kafka Streams and
    /// streamlib only.
    pub fn command(&self, system: System, args: &ChildArgs<'_>) -> Result<Command> {
        let nexmark = matches!(args.program, Program::Nexmark { .. });
        let mut command = match (system, nexmark) {
            (System::KafkaStreams, false) => self.java("streamlib.peers.PeerApp"),
            (System::KafkaStreams, true) => self.java("streamlib.peers.NexmarkApp"),
            (System::Quix, false) => {
                let mut c = Command::new(&self.python);
                c.arg(&self.quix_script);
                c
            }
            (System::Streamlib | System::Ceiling, false) => {
                let mut c = Command::new(&self.exe);
                c.args(["app", "--system", system.name()]);
                c
            }
            (System::Streamlib, true) => {
                let mut c = Command::new(&self.exe);
                c.arg("nexmark-app");
                c
            }
            (System::Quix | System::Ceiling, true) => bail!("{system} does not run Nexmark"),
        };
        command.args(args.to_args());
        if system != System::Quix {
            command.args(["--threads".to_string(), args.threads.to_string()]);
        }
        Ok(command)
    }

    /// The command that starts one failover instance of `system`: Kafka Streams' or (for
    /// every other system) streamlib's.
    pub fn failover_command(&self, system: System, instance: &Instance) -> Command {
        let mut command = if system == System::KafkaStreams {
            self.java("streamlib.peers.FailoverApp")
        } else {
            let mut c = Command::new(&self.exe);
            c.arg("failover-app");
            c
        };
        command.args(instance.to_args());
        command
    }

    /// `java` with the peer's options and classpath, running `class`.
    fn java(&self, class: &str) -> Command {
        let mut c = Command::new("java");
        c.args(&self.jvm_opts)
            .arg("-cp")
            .arg(&self.java_classpath)
            .arg(class);
        c
    }
}

/// Newest modification time of `path` or anything below it.
fn newest(path: &Path) -> Result<SystemTime> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mut newest = meta.modified()?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            newest = newest.max(self::newest(&entry?.path())?);
        }
    }
    Ok(newest)
}

/// Runs `command`, failing with its output when it fails.
fn run(command: &mut Command) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("{command:?} failed ({}):\n{text}", output.status);
    }
    Ok(text)
}

/// `mvn package` in `project` unless `target/` is newer than the POM and the sources: offline
/// first (fast, and works without a network once the local repository has everything), then
/// online.
fn build_kafka_streams(project: &Path) -> Result<()> {
    let stamp = project.join("target/.peers-built");
    let sources = newest(&project.join("pom.xml"))?.max(newest(&project.join("src"))?);
    if std::fs::metadata(&stamp)
        .and_then(|m| m.modified())
        .is_ok_and(|built| built >= sources)
    {
        return Ok(());
    }
    eprintln!("building the Kafka Streams peer (mvn package)");
    let pom = project.join("pom.xml");
    let mvn = |offline: bool| {
        let mut c = Command::new("mvn");
        c.args(["-B", "-q"]);
        if offline {
            c.arg("-o");
        }
        c.arg("-f").arg(&pom).arg("package");
        run(&mut c)
    };
    if mvn(true).is_err() {
        mvn(false).context("building the Kafka Streams peer (is Maven installed? JDK 17+?)")?;
    }
    std::fs::write(&stamp, b"").context("stamping the build")?;
    Ok(())
}

/// The interpreter of a virtual environment with exactly `requirements` installed, created
/// under `~/.cache/streamlib/peers/` (or `$PEERS_CACHE`) on first use; its name carries a hash
/// of the requirements, so changing them makes a new one.
fn quix_venv(requirements: &Path) -> Result<PathBuf> {
    let pinned = std::fs::read(requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let cache = match std::env::var_os("PEERS_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?)
            .join(".cache/streamlib/peers"),
    };
    let hash = pinned.iter().fold(0xCBF2_9CE4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01B3)
    });
    let venv = cache.join(format!("quix-venv-{:08x}", hash as u32));
    let python = venv.join("bin/python");
    if venv.join(".complete").exists() {
        return Ok(python);
    }
    eprintln!(
        "creating {} (pip install -r {})",
        venv.display(),
        requirements.display()
    );
    let _ = std::fs::remove_dir_all(&venv);
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let interpreter = std::env::var("PEERS_PYTHON").unwrap_or_else(|_| "python3".into());
    run(Command::new(&interpreter).args(["-m", "venv"]).arg(&venv))
        .context("creating the Quix virtual environment (Debian: apt-get install python3-venv)")?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "--disable-pip-version-check", "-r"])
        .arg(requirements))
    .context("installing Quix Streams")?;
    std::fs::write(venv.join(".complete"), b"").context("stamping the environment")?;
    Ok(python)
}

/// The first line a tool prints for `args` (e.g. `java -version`).
fn tool_version(tool: &str, args: &[&str]) -> Result<String> {
    let text = run(Command::new(tool).args(args))?;
    Ok(text.lines().next().unwrap_or_default().trim().to_string())
}

/// The version in the file name of the jar in `target/lib` starting with `prefix`.
fn jar_version(target: &Path, prefix: &str) -> Result<String> {
    for entry in std::fs::read_dir(target.join("lib")).context("listing target/lib")? {
        let name = entry?.file_name().to_string_lossy().to_string();
        if let Some(version) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(".jar"))
            .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        {
            return Ok(version.to_string());
        }
    }
    bail!("no {prefix}*.jar in {}", target.join("lib").display())
}
