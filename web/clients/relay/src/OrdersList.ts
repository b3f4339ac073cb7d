// Every order, paged forwards and backwards with one @connection (Relay's usePaginationFragment).
import { graphql } from "relay-runtime";

export const ordersListFragment = graphql`
  fragment OrdersList_query on Query
  @refetchable(queryName: "OrdersListPaginationQuery")
  @argumentDefinitions(
    first: { type: "Int", defaultValue: 20 }
    after: { type: "String" }
    last: { type: "Int" }
    before: { type: "String" }
    filter: { type: "OrderFilter" }
  ) {
    orders(first: $first, after: $after, last: $last, before: $before, filter: $filter)
      @connection(key: "OrdersList_orders", filters: ["filter"]) {
      totalCount
      edges {
        cursor
        node {
          id
          status
          totalCents
          currency
          placedAt
        }
      }
      pageInfo {
        hasNextPage
        hasPreviousPage
        startCursor
        endCursor
      }
    }
  }
`;

export const ordersListQuery = graphql`
  query OrdersListQuery {
    ...OrdersList_query
  }
`;
