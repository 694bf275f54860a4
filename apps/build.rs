//! Vendors the live dashboard's chart library at build time: `npm ci` of `dashboard/`'s lock
//! file (integrity-checked, production dependencies only) into `OUT_DIR`, then the standalone
//! build of lightweight-charts is copied to `OUT_DIR/lightweight-charts.js`, which
//! `src/dashboard/server.rs` compiles into the binary. Nothing is fetched at run time.

use std::path::{Path, PathBuf};
use std::process::Command;

const LIBRARY: &str =
    "node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js";

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let web = manifest.join("../dashboard");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    for file in ["package.json", "package-lock.json"] {
        println!("cargo:rerun-if-changed={}", web.join(file).display());
    }
    for file in ["index.html", "app.js", "style.css"] {
        println!(
            "cargo:rerun-if-changed={}",
            web.join("web").join(file).display()
        );
    }
    let npm_dir = out.join("npm");
    if let Err(error) = vendor(&web, &npm_dir) {
        panic!(
            "vendoring the dashboard's chart library with npm: {error}\n\
             The build needs Node.js and npm (and the npm registry, or its cache in ~/.npm)."
        );
    }
    std::fs::copy(npm_dir.join(LIBRARY), out.join("lightweight-charts.js"))
        .unwrap_or_else(|e| panic!("copying {LIBRARY}: {e}"));
}

/// `npm ci` of `web`'s package files in `dir`, unless `dir` already holds that lock's install.
fn vendor(web: &Path, dir: &Path) -> Result<(), String> {
    let lock = std::fs::read(web.join("package-lock.json")).map_err(|e| e.to_string())?;
    let installed = dir.join("installed-lock.json");
    if std::fs::read(&installed).ok().as_deref() == Some(&lock) && dir.join(LIBRARY).exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(web.join(file), dir.join(file)).map_err(|e| format!("{file}: {e}"))?;
    }
    // Captured: a build script's standard output is read by cargo as directives.
    let output = Command::new("npm")
        .args([
            "ci",
            "--omit=dev",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
        ])
        .current_dir(dir)
        .output()
        .map_err(|e| format!("running npm: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "npm ci ended with {}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    std::fs::write(&installed, &lock).map_err(|e| e.to_string())
}
