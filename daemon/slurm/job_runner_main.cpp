// mpctl-slurm-job: what the job script of a Slurm pool's task runs on its node (slurm/job_runner.hpp).

#include <mpctl/daemon/slurm/job_runner.hpp>

int main(int argc, char** argv) {
    return mpctl::daemon::slurm::run_job(argc, argv);
}
