// subnet-proxy under pm2 (as many subnet operators run their neurons):
//   SUBNET_PROXY_VENV=/opt/subnet-proxy/venv pm2 start deploy/pm2/ecosystem.config.js --only subnet-proxy-validator
//   pm2 logs subnet-proxy-validator; pm2 save && pm2 startup   (start again at boot)
// Edit the flags below. A crash restarts after 10 s; a set-up error (exit 1: wallet, store, a build
// older than the subnet's weights version) or a bad flag (exit 2) does not: fix it, then `pm2 restart`.
const venv = process.env.SUBNET_PROXY_VENV || "/opt/subnet-proxy/venv";
const dataDir = process.env.SUBNET_PROXY_DATA_DIR || `${process.env.HOME}/.subnet-proxy`;

// killTimeout: SIGINT first; the validator's in-flight tasks get --neuron.shutdown_grace_s (30 s), scores are saved
function neuron(command, wallet, flags, killTimeout) {
  return {
    name: command,
    script: `${venv}/bin/${command}`,
    interpreter: "none",
    args: ["--netuid", "1", "--subtensor.network", "finney", "--wallet.name", wallet, "--wallet.hotkey", "default",
           "--neuron.data_dir", dataDir, ...flags],
    autorestart: true,
    restart_delay: 10000,
    stop_exit_codes: [0, 1, 2],
    kill_timeout: killTimeout,
    env: { PYTHONUNBUFFERED: "1", HF_HUB_OFFLINE: "1" },
  };
}

module.exports = {
  apps: [
    neuron("subnet-proxy-validator", "validator", ["--proxy.port", "8000"], 60000),
    neuron("subnet-proxy-miner", "miner", ["--axon.port", "8091"], 30000),
  ],
};
