//! A PulseAudio daemon of a test's own: HOME and XDG_RUNTIME_DIR in a temporary directory, so
//! no user session is touched, with the sinks and modules the test asks for, and ALSA's
//! default device pointed at it (cpal and baresip's alsa module both go through it).
//!
//! Needs the Debian packages pulseaudio, pulseaudio-utils and libasound2-plugins; a missing
//! one fails the test with the package to install.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PulseSession {
    dir: tempfile::TempDir,
    daemon: Child,
}

impl PulseSession {
    /// Starts a daemon that runs `default_pa` (lines of a PulseAudio script: modules, sinks,
    /// defaults) after its native protocol; `extra_asoundrc` adds ALSA devices.
    pub fn start(default_pa: &str, extra_asoundrc: &str) -> Self {
        require_tools();
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let run = dir.path().join("run");
        fs::create_dir_all(home.join(".config")).unwrap();
        fs::create_dir_all(&run).unwrap();
        set_private(&run);
        fs::write(
            dir.path().join("default.pa"),
            format!("load-module module-native-protocol-unix\n{default_pa}\n"),
        )
        .unwrap();
        fs::write(
            home.join(".asoundrc"),
            format!(
                "pcm.!default {{ type pulse }}\nctl.!default {{ type pulse }}\n{extra_asoundrc}\n"
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.path().join("pulseaudio.log")).unwrap();
        let mut command = Command::new("pulseaudio");
        command
            .args(["-n", "-F"])
            .arg(dir.path().join("default.pa"))
            .args([
                "--exit-idle-time=-1",
                "--daemonize=no",
                "--log-target=stderr",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        apply_env(&mut command, dir.path());
        let daemon = command.spawn().unwrap_or_else(|e| {
            panic!("cannot start pulseaudio (apt-get install pulseaudio): {e}")
        });
        let session = PulseSession { dir, daemon };
        session.wait_until_ready();
        session
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ready = self
                .command("pactl")
                .arg("info")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pulseaudio did not come up in 10 s; its log:\n{}",
                fs::read_to_string(self.dir.path().join("pulseaudio.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The session's directory: put the test's files here.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `program` with the session's environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        apply_env(&mut command, self.dir.path());
        command
    }

    /// Sets the session's environment on a command built elsewhere.
    pub fn apply_env(&self, command: &mut Command) {
        apply_env(command, self.dir.path());
    }
}

impl Drop for PulseSession {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// Everything a PulseAudio or ALSA client needs to find the private daemon in `dir` and
/// nothing else.
pub fn apply_env(command: &mut Command, dir: &Path) {
    let home = dir.join("home");
    let run = dir.join("run");
    command
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &run)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env(
            "PULSE_SERVER",
            format!("unix:{}", run.join("pulse").join("native").display()),
        )
        .env_remove("ALSA_CONFIG_PATH")
        .env_remove("PULSE_COOKIE")
        .env_remove("PULSE_SINK")
        .env_remove("PULSE_SOURCE")
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
}

#[cfg(unix)]
fn set_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
}

fn require_tools() {
    for (tool, package) in [
        ("pulseaudio", "pulseaudio"),
        ("pactl", "pulseaudio-utils"),
        ("pacmd", "pulseaudio-utils"),
        ("paplay", "pulseaudio-utils"),
        ("parec", "pulseaudio-utils"),
    ] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        assert!(
            found,
            "{tool} is missing: these tests need `apt-get install pulseaudio pulseaudio-utils \
             libasound2-plugins` ({package})"
        );
    }
    let plugin_dirs = [
        "/usr/lib/x86_64-linux-gnu/alsa-lib",
        "/usr/lib/aarch64-linux-gnu/alsa-lib",
        "/usr/lib64/alsa-lib",
        "/usr/lib/alsa-lib",
    ];
    assert!(
        plugin_dirs.iter().any(|dir| Path::new(dir)
            .join("libasound_module_pcm_pulse.so")
            .exists()),
        "ALSA's PulseAudio plugin is missing: `apt-get install libasound2-plugins`"
    );
}
