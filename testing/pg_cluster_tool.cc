// The CTest fixture's way to start and stop the shared test PostgreSQL cluster.
#include "testing/pg_cluster.h"

int main(int argc, char** argv) { return drover::testing::PgClusterToolMain(argc, argv); }
