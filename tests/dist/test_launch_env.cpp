// Rank, world size and local rank from each launcher's variables, the
// precedence between launchers, and the errors for inconsistent values.
#include <doctest/doctest.h>

#include "engine/distributed.h"

using tpp::dist::detect_launch_env;
using tpp::dist::EnvMap;
using tpp::dist::LaunchEnv;

TEST_SUITE("distributed") {

TEST_CASE("no launcher variables mean one process: rank 0 of 1") {
  const LaunchEnv env = detect_launch_env(EnvMap{{"HOME", "/root"}});
  CHECK(env.rank == 0);
  CHECK(env.world_size == 1);
  CHECK(env.local_rank == 0);
  CHECK(env.local_rank_known);
  CHECK(env.launcher == "none");
  CHECK_FALSE(env.mpi_launched);
  CHECK_FALSE(env.distributed());
}

TEST_CASE("OpenMPI's mpirun variables give rank, size and local rank") {
  const LaunchEnv env = detect_launch_env(EnvMap{{"OMPI_COMM_WORLD_RANK", "3"},
                                                 {"OMPI_COMM_WORLD_SIZE", "8"},
                                                 {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                                 {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                                                 {"PMIX_RANK", "3"}});
  CHECK(env.rank == 3);
  CHECK(env.world_size == 8);
  CHECK(env.local_rank == 1);
  CHECK(env.local_world_size == 2);
  CHECK(env.launcher == "OpenMPI");
  CHECK(env.mpi_launched);
  CHECK(env.distributed());
  CHECK(env.describe() == "rank 3 of 8 (local rank 1, launcher OpenMPI)");
}

TEST_CASE("PMI variables (MPICH, Intel MPI, srun --mpi=pmi2) give rank, size and local rank") {
  const LaunchEnv env =
      detect_launch_env(EnvMap{{"PMI_RANK", "5"}, {"PMI_SIZE", "6"}, {"MPI_LOCALRANKID", "2"}});
  CHECK(env.rank == 5);
  CHECK(env.world_size == 6);
  CHECK(env.local_rank == 2);
  CHECK(env.launcher == "PMI");
  CHECK(env.mpi_launched);
}

TEST_CASE("Slurm's srun variables give rank, size and local rank") {
  const LaunchEnv env = detect_launch_env(
      EnvMap{{"SLURM_PROCID", "9"}, {"SLURM_NTASKS", "16"}, {"SLURM_LOCALID", "1"}, {"SLURM_JOB_ID", "77"}});
  CHECK(env.rank == 9);
  CHECK(env.world_size == 16);
  CHECK(env.local_rank == 1);
  CHECK(env.launcher == "Slurm");
  CHECK(env.mpi_launched);
}

TEST_CASE("torchrun variables give rank, size, local rank and the master address") {
  const LaunchEnv env = detect_launch_env(EnvMap{{"RANK", "2"},
                                                 {"WORLD_SIZE", "4"},
                                                 {"LOCAL_RANK", "2"},
                                                 {"LOCAL_WORLD_SIZE", "4"},
                                                 {"MASTER_ADDR", "127.0.0.1"},
                                                 {"MASTER_PORT", "29500"}});
  CHECK(env.rank == 2);
  CHECK(env.world_size == 4);
  CHECK(env.local_rank == 2);
  CHECK(env.launcher == "torchrun");
  CHECK_FALSE(env.mpi_launched);
  CHECK(env.master_addr == "127.0.0.1");
  CHECK(env.master_port == 29500);
}

TEST_CASE("the innermost launcher wins: torchrun under srun, mpirun inside an sbatch allocation") {
  const LaunchEnv torchrun_in_srun = detect_launch_env(EnvMap{{"SLURM_PROCID", "1"},
                                                              {"SLURM_NTASKS", "2"},
                                                              {"SLURM_LOCALID", "0"},
                                                              {"RANK", "13"},
                                                              {"WORLD_SIZE", "16"},
                                                              {"LOCAL_RANK", "5"}});
  CHECK(torchrun_in_srun.launcher == "torchrun");
  CHECK(torchrun_in_srun.rank == 13);
  CHECK(torchrun_in_srun.world_size == 16);
  const LaunchEnv mpirun_in_sbatch = detect_launch_env(EnvMap{{"SLURM_PROCID", "0"},
                                                              {"SLURM_NTASKS", "4"},
                                                              {"OMPI_COMM_WORLD_RANK", "2"},
                                                              {"OMPI_COMM_WORLD_SIZE", "4"},
                                                              {"OMPI_COMM_WORLD_LOCAL_RANK", "2"}});
  CHECK(mpirun_in_sbatch.launcher == "OpenMPI");
  CHECK(mpirun_in_sbatch.rank == 2);
}

TEST_CASE("a multi-process launch without a local rank variable marks the local rank unknown") {
  const LaunchEnv env = detect_launch_env(EnvMap{{"PMI_RANK", "1"}, {"PMI_SIZE", "2"}});
  CHECK_FALSE(env.local_rank_known);
  CHECK(env.local_rank == 0);
  CHECK(env.describe() == "rank 1 of 2 (local rank unknown, launcher PMI)");
  const LaunchEnv alone = detect_launch_env(EnvMap{{"RANK", "0"}, {"WORLD_SIZE", "1"}});
  CHECK(alone.local_rank_known);
}

TEST_CASE("a rank without a world size is an error naming both variables") {
  CHECK_THROWS_WITH(detect_launch_env(EnvMap{{"RANK", "1"}}),
                    "launch environment: RANK is set but WORLD_SIZE is not (torchrun sets both)");
  CHECK_THROWS_WITH(detect_launch_env(EnvMap{{"SLURM_NTASKS", "4"}}),
                    "launch environment: SLURM_NTASKS is set but SLURM_PROCID is not (Slurm sets both)");
}

TEST_CASE("a rank at or above the world size is an error") {
  CHECK_THROWS_WITH(detect_launch_env(EnvMap{{"OMPI_COMM_WORLD_RANK", "2"}, {"OMPI_COMM_WORLD_SIZE", "2"}}),
                    "launch environment: OMPI_COMM_WORLD_RANK=2 is not below OMPI_COMM_WORLD_SIZE=2");
  CHECK_THROWS_WITH(detect_launch_env(EnvMap{{"RANK", "0"}, {"WORLD_SIZE", "0"}}),
                    "launch environment: WORLD_SIZE=0: a world has at least one rank");
}

TEST_CASE("text where a number belongs is an error quoting it") {
  CHECK_THROWS_WITH(detect_launch_env(EnvMap{{"RANK", "one"}, {"WORLD_SIZE", "2"}}),
                    "launch environment: RANK='one' is not a non-negative integer");
  CHECK_THROWS_WITH(detect_launch_env(EnvMap{{"RANK", "-1"}, {"WORLD_SIZE", "2"}}),
                    "launch environment: RANK='-1' is not a non-negative integer");
  CHECK_THROWS_WITH(detect_launch_env(EnvMap{{"RANK", ""}, {"WORLD_SIZE", "2"}}),
                    "launch environment: RANK='' is not a non-negative integer");
  CHECK_THROWS_WITH(detect_launch_env(EnvMap{{"MASTER_PORT", "99999"}}),
                    "launch environment: MASTER_PORT='99999' is not a port number (1-65535)");
}

TEST_CASE("local ranks beyond the rank or the local size are errors") {
  CHECK_THROWS_WITH(detect_launch_env(EnvMap{{"RANK", "1"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "3"}}),
                    "launch environment: LOCAL_RANK=3 is above RANK=1: a local rank counts ranks of one node");
  CHECK_THROWS_WITH(
      detect_launch_env(EnvMap{{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "3"}, {"LOCAL_WORLD_SIZE", "2"}}),
      "launch environment: LOCAL_RANK=3 is not below LOCAL_WORLD_SIZE=2");
}

TEST_CASE("OpenMPI and PMIx disagreeing about this process is an error") {
  CHECK_THROWS_WITH(
      detect_launch_env(EnvMap{{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}, {"PMIX_RANK", "0"}}),
      "launch environment: OMPI_COMM_WORLD_RANK=1 but PMIX_RANK=0: the launchers disagree about this process");
}

TEST_CASE("the collective timeout defaults to 300 s and reads TPP_COLLECTIVE_TIMEOUT") {
  CHECK(tpp::dist::collective_timeout(EnvMap{}).count() == 300.0);
  CHECK(tpp::dist::collective_timeout(EnvMap{{"TPP_COLLECTIVE_TIMEOUT", "2.5"}}).count() == 2.5);
  CHECK_THROWS_WITH(tpp::dist::collective_timeout(EnvMap{{"TPP_COLLECTIVE_TIMEOUT", "0"}}),
                    "TPP_COLLECTIVE_TIMEOUT='0' is not a positive number of seconds");
  CHECK_THROWS_WITH(tpp::dist::collective_timeout(EnvMap{{"TPP_COLLECTIVE_TIMEOUT", "5min"}}),
                    "TPP_COLLECTIVE_TIMEOUT='5min' is not a positive number of seconds");
}

}  // TEST_SUITE
