// subnet-proxy under pm2 (as many subnet operators run their neurons):
//   SUBNET_PROXY_VENV=/opt/subnet-proxy/venv pm2 start deploy/pm2/ecosystem.config.js --only subnet-proxy-validator
//   pm2 logs subnet-proxy-validator; pm2 save && pm2 startup   (start again at boot)
// Edit the flags in `args`. A crash restarts after 10 s; a set-up error (exit 1: wallet, store, a build
// older than the subnet's weights version) or a bad flag (exit 2) does not: fix it, then `pm2 restart`.
const venv = process.env.SUBNET_PROXY_VENV || "/opt/subnet-proxy/venv";
const dataDir = process.env.SUBNET_PROXY_DATA_DIR || `${process.env.HOME}/.subnet-proxy`;
const common = {
  interpreter: "none",
  autorestart: true,
  restart_delay: 10000,
  stop_exit_codes: [0, 1, 2],
  env: { PYTHONUNBUFFERED: "1", HF_HUB_OFFLINE: "1" },
};

module.exports = {
  apps: [
    {
      ...common,
      name: "subnet-proxy-validator",
      script: `${venv}/bin/subnet-proxy-validator`,
      args: ["--netuid", "1", "--subtensor.network", "finney", "--wallet.name", "validator",
             "--wallet.hotkey", "default", "--neuron.data_dir", dataDir, "--proxy.port", "8000"],
      // SIGINT first: intake stops, in-flight tasks get --neuron.shutdown_grace_s (30 s), scores are saved
      kill_timeout: 60000,
    },
    {
      ...common,
      name: "subnet-proxy-miner",
      script: `${venv}/bin/subnet-proxy-miner`,
      args: ["--netuid", "1", "--subtensor.network", "finney", "--wallet.name", "miner",
             "--wallet.hotkey", "default", "--neuron.data_dir", dataDir, "--axon.port", "8091"],
      kill_timeout: 30000,
    },
  ],
};
