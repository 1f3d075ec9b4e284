//! Prints the GraphQL schema (SDL): `make schema` writes it to `schema/console.graphql`.
//! Apart from `jsconsole schema` because the binary embeds the web console, whose build
//! checks its operations against the checked-in schema: a new field must be exported before
//! the pages can use it.

fn main() {
    print!("{}", jsc_graphql::sdl());
}
